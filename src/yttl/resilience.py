"""Retries, pacing and the circuit breaker: how one logical call is attempted.

``RetryManager`` is the engine's ``CallPolicy``. Per error category (DESIGN §7) it decides
whether and how often to try again, waits with exponential backoff and jitter (or what
``Retry-After`` asks), gives each attempt a longer timeout than the last, paces requests
and tokens under the provider's budget, and consults the provider's circuit breaker so a
dead endpoint fails fast instead of being hammered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_random_exponential

from yttl.errors import (
    AuthError,
    CircuitOpenError,
    ContextLengthError,
    NetworkError,
    ProviderError,
    RateLimitError,
    ResourceError,
    StopRequested,
)
from yttl.llm.base import Completion
from yttl.perf import PerformanceTracker

__all__ = ["CircuitBreaker", "Pacer", "RetryManager", "RetryPolicy"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float | None = 120.0  # first attempt; each retry gets 50 % more
    # categories whose calls are worth repeating, and how many attempts each may have
    rate_limit_attempts: int = 6

    def attempts_for(self, error: BaseException) -> int:
        if isinstance(
            error, AuthError | ContextLengthError | ResourceError | CircuitOpenError | StopRequested
        ):
            return 1  # repeating cannot help
        if isinstance(error, RateLimitError):
            return max(self.max_attempts, self.rate_limit_attempts)
        if isinstance(error, ProviderError):
            return self.max_attempts
        return 1


class CircuitBreaker:
    """Closed, open after ``threshold`` failures in a row, half-open after ``cooldown``."""

    def __init__(self, name: str, threshold: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.state = "closed"
        self.failures = 0
        self.trips = 0
        self._opened_at = 0.0
        self._probe_out = False

    def before_call(self) -> None:
        if self.state == "open":
            if self._clock() - self._opened_at < self.cooldown:
                raise CircuitOpenError(
                    f"{self.name}: not called; {self.threshold} calls in a row failed and the "
                    f"circuit is open for {self.cooldown:.0f} s",
                )
            self.state = "half-open"
            self._probe_out = False
            logger.info("%s: circuit half-open, trying one call", self.name)
        if self.state == "half-open":
            if self._probe_out:
                raise CircuitOpenError(f"{self.name}: not called while the circuit is half-open")
            self._probe_out = True

    def success(self) -> None:
        if self.state != "closed":
            logger.info("%s: circuit closed again", self.name)
        self.state, self.failures, self._probe_out = "closed", 0, False

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half-open" or (
            self.state == "closed" and self.failures >= self.threshold
        ):
            self.state = "open"
            self._opened_at = self._clock()
            self._probe_out = False
            self.trips += 1
            logger.warning("%s: %d calls in a row failed; circuit open for %.0f s",
                           self.name, self.failures, self.cooldown)  # fmt: skip


@dataclass
class Pacer:
    """Client-side budget: requests and tokens per minute, spread evenly.

    Requests start at least ``60 / rpm`` seconds apart; tokens come from a bucket that
    refills continuously and holds ten seconds' worth (or one request's), so a long
    video paces itself instead of bursting into 429s. A 429 slows the pace to 70 %;
    successes bring it back by 5 % at a time.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    factor: float = 1.0
    _next_start: float = 0.0
    _tokens: float | None = None
    _refilled: float = field(default=0.0)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def active(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute)

    async def acquire(self, tokens: int) -> float:
        """Wait for a slot for a request of about ``tokens``; returns the seconds waited."""
        if not self.active:
            return 0.0
        async with self._lock:
            waited = 0.0
            now = self.clock()
            if self.requests_per_minute:
                interval = 60.0 / (self.requests_per_minute * self.factor)
                delay = max(self._next_start - now, 0.0)
                if delay:
                    await self.sleep(delay)
                    waited += delay
                self._next_start = max(now, self._next_start) + interval
            if self.tokens_per_minute:
                rate = self.tokens_per_minute * self.factor / 60.0
                capacity = max(rate * 10, float(tokens))
                now = self.clock()
                if self._tokens is None:
                    self._tokens, self._refilled = capacity, now
                self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
                self._refilled = now
                if self._tokens < tokens:
                    delay = (tokens - self._tokens) / rate
                    await self.sleep(delay)
                    waited += delay
                    self._tokens, self._refilled = float(tokens), self.clock()
                self._tokens -= tokens
            return waited

    def slow_down(self) -> None:
        self.factor = max(self.factor * 0.7, 0.1)

    def recover(self) -> None:
        self.factor = min(self.factor * 1.05, 1.0)


class RetryManager:
    """The engine's ``CallPolicy``: retries with backoff, pacing, and the breaker."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        breaker: CircuitBreaker | None = None,
        pacer: Pacer | None = None,
        tracker: PerformanceTracker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self.breaker = breaker
        self.pacer = pacer or Pacer()
        self.tracker = tracker
        self._sleep = sleep
        self._backoff = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.policy.max_delay)
        return float(self._backoff(state))

    def _should_retry(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, ProviderError) and (
            state.attempt_number < self.policy.attempts_for(error)
        )

    async def __call__(
        self, label: str, attempt: Callable[[], Awaitable[Completion]], *, tokens: int = 0
    ) -> Completion:
        attempts = 0

        async def one_attempt() -> Completion:
            nonlocal attempts
            attempts += 1
            if self.breaker is not None:
                self.breaker.before_call()
            await self.pacer.acquire(tokens)
            timeout = self.policy.timeout
            if timeout is not None:
                timeout *= 1.5 ** (attempts - 1)
            try:
                async with asyncio.timeout(timeout):
                    completion = await attempt()
            except TimeoutError as exc:
                error: ProviderError = NetworkError(f"{label}: no answer within {timeout:.0f} s")
                self._failed(label, error, attempts)
                raise error from exc
            except ProviderError as exc:
                self._failed(label, exc, attempts)
                raise
            if self.breaker is not None:
                self.breaker.success()
            self.pacer.recover()
            return completion

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

    def _failed(self, label: str, error: ProviderError, attempt: int) -> None:
        # the endpoint answered these, so they say nothing about its health
        answered = isinstance(
            error, CircuitOpenError | AuthError | ContextLengthError | StopRequested
        )
        if self.breaker is not None and not answered:
            self.breaker.failure()
        if isinstance(error, RateLimitError):
            self.pacer.slow_down()
        if self.tracker is not None:
            self.tracker.error(error.category)
            if attempt < self.policy.attempts_for(error):
                self.tracker.count("retries")
        logger.debug("%s: attempt %d failed (%s): %s", label, attempt, error.category,
                     error.message)  # fmt: skip
