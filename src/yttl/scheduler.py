"""One scheduler per run: every call of every video and every stage goes through it.

A provider's budgets live in its ``Lane``, shared by all the videos of the run: calls
in flight (slots), requests and tokens per minute (``Pacer``) and its health
(``CircuitBreaker``). One attempt of a call takes a slot, then waits for the breaker to
let it through, then for its pacing budget, and only then is sent; its timeout counts
from that moment, never while it waits its turn. Between attempts it holds nothing, so
one section's retries never hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_random_exponential

from yttl.errors import NetworkError, ProviderError, RateLimitError, StopRequested
from yttl.perf import PerformanceTracker
from yttl.resilience import CircuitBreaker, Pacer, RetryPolicy, health_outcome

__all__ = ["CallPolicy", "Lane", "Scheduler", "direct_call"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class CallPolicy(Protocol):
    """How one logical call is attempted: the seam the engine and uploads see."""

    async def __call__(
        self,
        label: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        tokens: int = 0,
        tracker: PerformanceTracker | None = None,
    ) -> T: ...


async def direct_call(
    label: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    tokens: int = 0,
    tracker: PerformanceTracker | None = None,
) -> T:
    """One attempt, no slot, no retry: for tests of the stages behind the policy."""
    return await attempt()


class Lane:
    """One provider's share of the scheduler: its slots, pacing, breaker and retries."""

    def __init__(
        self,
        name: str,
        *,
        max_concurrent: int,
        policy: RetryPolicy,
        breaker: CircuitBreaker | None = None,
        pacer: Pacer | None = None,
        stop: asyncio.Event | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.max_concurrent = max(1, max_concurrent)
        self.policy = policy
        self.breaker = breaker
        self.pacer = pacer or Pacer()
        self._stop = stop or asyncio.Event()
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent = 0

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.policy.max_delay)
        return float(self._backoff(state))

    def _should_retry(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if self._stop.is_set():
            return False
        return isinstance(error, ProviderError) and (
            state.attempt_number < self.policy.attempts_for(error)
        )

    async def _send(self, label: str, attempt: Callable[[], Awaitable[T]], number: int,
                    tokens: int) -> T:  # fmt: skip
        probe = False
        error: BaseException | None = None
        answered = False
        try:
            async with self._slots:
                # The breaker is asked with the slot in hand, right before sending: calls
                # that queued while the endpoint was healthy do not rush a dead one.
                if self.breaker is not None:
                    probe = await self.breaker.permit(self._stop)
                if self._stop.is_set():
                    raise StopRequested(f"{label}: not started, the run is stopping")
                await self.pacer.acquire(tokens)
                if self._stop.is_set():
                    raise StopRequested(f"{label}: not started, the run is stopping")
                timeout = self.policy.timeout_for(number)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.sent += 1
                try:
                    async with asyncio.timeout(timeout):  # from sending, not from queueing
                        result = await attempt()
                except TimeoutError as exc:
                    raise NetworkError(f"{label}: no answer within {timeout:.0f} s") from exc
                finally:
                    self.in_flight -= 1
            answered = True
            return result
        except ProviderError as exc:
            error, answered = exc, True
            raise
        finally:
            if self.breaker is not None:
                outcome = health_outcome(error) if answered else "neutral"
                self.breaker.record(outcome, probe=probe)
            if answered and error is None:
                self.pacer.recover()

    async def __call__(
        self,
        label: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        tokens: int = 0,
        tracker: PerformanceTracker | None = None,
    ) -> T:
        attempts = 0

        async def one_attempt() -> T:
            nonlocal attempts
            attempts += 1
            try:
                return await self._send(label, attempt, attempts, tokens)
            except ProviderError as exc:
                self._failed(label, exc, attempts, tracker)
                raise

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(self.policy.max_attempts, self.policy.rate_limit_attempts)),
            wait=self._wait,
            retry=self._should_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(one_attempt)
        except ProviderError as exc:
            exc.attempts = attempts
            raise

    def _failed(self, label: str, error: ProviderError, attempt: int,
                tracker: PerformanceTracker | None) -> None:  # fmt: skip
        if isinstance(error, RateLimitError):
            self.pacer.slow_down()
        if tracker is not None and not isinstance(error, StopRequested):
            tracker.error(error.category)
            if attempt < self.policy.attempts_for(error) and not self._stop.is_set():
                tracker.count("retries")
        logger.debug("%s: attempt %d failed (%s): %s", label, attempt, error.category,
                     error.message)  # fmt: skip


class Scheduler:
    """The run's lanes, one per provider (and purpose), and its stop event.

    A lane is made the first time a provider is asked for and then shared: two videos of
    a batch pace themselves together under the provider's one limit.
    """

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self.stop = stop or asyncio.Event()
        self._lanes: dict[str, Lane] = {}

    def lane(self, key: str, build: Callable[[asyncio.Event], Lane]) -> Lane:
        if key not in self._lanes:
            self._lanes[key] = build(self.stop)
        return self._lanes[key]

    @property
    def lanes(self) -> dict[str, Lane]:
        return dict(self._lanes)

    @property
    def breaker_trips(self) -> int:
        return sum(lane.breaker.trips for lane in self._lanes.values() if lane.breaker)
