"""A recording provider behind the ``LLMProvider`` Protocol, for engine stage tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from yttl.errors import ProviderError
from yttl.llm.base import Completion, Message
from yttl.summarize.prompts import estimate_tokens


@dataclass
class RecordedCall:
    messages: list[Message]
    start: float
    end: float = 0.0

    @property
    def user(self) -> str:
        return self.messages[-1].content

    @property
    def kind(self) -> str:
        system = self.messages[0].content
        if "overview of the whole video" in system:
            return "overview"
        if "one hour" in system:
            return "hour"
        if "consecutive parts" in system:
            return "merge"
        return "section"


@dataclass
class RecordingProvider:
    name: str = "fake"
    model: str = "fake-1"
    context_tokens: int = 100_000
    latency: Callable[[RecordedCall], float] = lambda call: 0.01
    fail: Callable[[RecordedCall], ProviderError | None] = lambda call: None
    calls: list[RecordedCall] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    closed: bool = False

    async def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        call = RecordedCall(list(messages), time.perf_counter())
        prompt_tokens = sum(estimate_tokens(m.content) for m in messages)
        assert prompt_tokens + max_tokens <= self.context_tokens, "request exceeds the context"
        self.calls.append(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency(call))
            error = self.fail(call)
            if error is not None:
                raise error
            return Completion(f"<{call.kind} of {len(call.user)} chars>", prompt_tokens, 10)
        finally:
            self.in_flight -= 1
            call.end = time.perf_counter()

    async def aclose(self) -> None:
        self.closed = True
