"""The one narrow seam every language model sits behind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Completion", "LLMProvider", "Message", "StreamingProvider", "TextSink"]

TextSink = Callable[[str], None]
"""Takes each piece of an answer as the model writes it."""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMProvider(Protocol):
    """An async chat model. Implementations raise ``yttl.errors.ProviderError`` subclasses.

    ``complete`` may be awaited many times at once; the engine bounds how many. Retries are
    the engine's business, not the provider's.
    """

    name: str
    model: str
    context_tokens: int

    async def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StreamingProvider(LLMProvider, Protocol):
    """A provider that can also hand over its answer as it is written.

    ``stream`` calls ``on_text`` with each new piece, in order, and returns the whole
    answer as ``complete`` would: one call, however many pieces, so the scheduler's lane
    admits, paces and judges it as any other."""

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int, on_text: TextSink
    ) -> Completion: ...
