"""How one LLM call is made: cache first, then the provider's lane of the run's scheduler
(slot, pacing, breaker, retries), a fallback provider, and a record of every attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from yttl.cache import ResultsCache, completion_key
from yttl.errors import (
    AuthError,
    ModelNotFoundError,
    ProviderError,
    StopRequested,
)
from yttl.llm.base import Completion, LLMProvider, Message
from yttl.perf import CallRecord, PerformanceTracker
from yttl.scheduler import CallPolicy, direct_call
from yttl.summarize.prompts import estimate_tokens, version_of

__all__ = ["CallRunner", "Route"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    provider: LLMProvider
    policy: CallPolicy = direct_call


class CallRunner:
    def __init__(
        self,
        primary: Route,
        *,
        tracker: PerformanceTracker,
        max_output_tokens: int,
        fallback: Route | None = None,
        cache: ResultsCache | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.primary = primary
        self._stop = stop or asyncio.Event()
        self.fallback = fallback
        self._tracker = tracker
        self._max_tokens = max_output_tokens
        self._cache = cache or ResultsCache(None)

    @property
    def stopping(self) -> bool:
        """Set on the first Ctrl-C: calls in flight finish (and are cached); no new ones."""
        return self._stop.is_set()

    def _key(self, provider: LLMProvider, messages: Sequence[Message]) -> str:
        return completion_key(
            provider.name, provider.model, version_of(messages), self._max_tokens, messages
        )

    async def __call__(self, label: str, messages: Sequence[Message]) -> str:
        for route in filter(None, (self.primary, self.fallback)):
            cached = self._cache.get_completion(self._key(route.provider, messages))
            if cached is not None:
                self._tracker.count("cache_hits")
                return cached.text
        try:
            return await self._through(self.primary, label, messages)
        except (AuthError, ModelNotFoundError, StopRequested):
            raise
        except ProviderError as exc:
            if self.fallback is None:
                raise
            logger.debug("%s: %s; trying the fallback", label, exc.message)
            return await self._through(self.fallback, f"{label} (fallback)", messages)

    async def _through(self, route: Route, label: str, messages: Sequence[Message]) -> str:
        provider = route.provider

        async def attempt() -> Completion:
            start = time.perf_counter()
            completion: Completion | None = None
            try:
                completion = await provider.complete(messages, max_tokens=self._max_tokens)
                return completion
            finally:
                record = CallRecord(
                    label,
                    start,
                    time.perf_counter(),
                    completion.prompt_tokens if completion else 0,
                    completion.completion_tokens if completion else 0,
                    completion is not None,
                )
                self._tracker.record_call(record)
                logger.debug(
                    "%s: %s in %.2f s (%d+%d tokens) via %s",
                    label,
                    "ok" if record.ok else "failed",
                    record.end - record.start,
                    record.prompt_tokens,
                    record.completion_tokens,
                    provider.name,
                )

        tokens = sum(estimate_tokens(m.content) for m in messages) + self._max_tokens
        completion = await route.policy(label, attempt, tokens=tokens, tracker=self._tracker)
        self._cache.put_completion(self._key(provider, messages), completion)
        return completion.text
