"""Retries and pacing: the parts of a provider's lane that are not its breaker.

``RetryPolicy`` says per error category (DESIGN §7) whether and how often a call is worth
repeating; ``Tries`` keeps one call's attempts and is the one place that decides whether
another is made and after how long; ``RetryBudget`` gives a lane's calls a few more tries
when scattered faults used up theirs; ``Pacer`` spreads requests and tokens under the
provider's budget and holds the lane for a ``Retry-After``. The breaker is in
``yttl.breaker``; ``yttl.scheduler`` puts them together.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState, wait_random_exponential

from yttl.breaker import BreakerOptions, CircuitBreaker, Outcome
from yttl.errors import (
    AuthError,
    BadResponseError,
    CircuitOpenError,
    ContextLengthError,
    NetworkError,
    ProviderError,
    ProviderStartingError,
    ProviderUnreachableError,
    RateLimitError,
    RequestRefusedError,
    ResourceError,
    ServerError,
    StopRequested,
)

__all__ = [
    "BreakerOptions",
    "CircuitBreaker",
    "Outcome",
    "Pacer",
    "RetryBudget",
    "RetryPolicy",
    "Tries",
    "health_outcome",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float | None = 120.0  # first attempt, from the moment it is sent; +50 % each retry
    rate_limit_attempts: int = 6  # a 429 asks for patience, not for giving up

    def attempts_for(self, error: BaseException) -> int:
        if isinstance(
            error,
            AuthError
            | ContextLengthError
            | RequestRefusedError
            | ResourceError
            | CircuitOpenError
            | StopRequested
            | ProviderUnreachableError,
        ):
            return 1  # repeating cannot help
        if isinstance(error, RateLimitError):
            if self.waits_too_long(error):
                return 1  # retrying before the time it names only earns another 429
            return max(self.max_attempts, self.rate_limit_attempts)
        if isinstance(error, ProviderError):
            return self.max_attempts
        return 1

    def waits_too_long(self, error: BaseException) -> bool:
        """A 429 that names a pause longer than yttl waits between attempts (a quota gone
        for the hour or the day): not worth six silent minutes of retries."""
        retry_after = getattr(error, "retry_after", None)
        return isinstance(error, RateLimitError) and (retry_after or 0.0) > self.max_delay

    def budgeted(self, error: BaseException) -> bool:
        """Whether a call that used up its tries on ``error`` may take more from the lane's
        budget: a transient fault of a healthy endpoint, when retrying is wanted at all."""
        transient = isinstance(error, NetworkError | ServerError | BadResponseError)
        return transient and self.attempts_for(error) > 1

    @property
    def budget_tries(self) -> int:
        """The most tries one call may take from the budget, so that one prompt the
        endpoint cannot answer does not spend it all."""
        return 2 * self.max_attempts

    def timeout_for(self, attempt: int) -> float | None:
        return None if self.timeout is None else self.timeout * 1.5 ** (attempt - 1)


@dataclass
class RetryBudget:
    """Extra tries shared by the calls of a lane, for calls that used up theirs while the
    endpoint was healthy: scattered faults then cost no section, and a sick endpoint gets
    a bounded share more requests, not a storm (a token bucket, as Finagle's budget).

    It starts with ``reserve`` tries; each call sent earns ``ratio`` more, up to ``reserve``.
    """

    ratio: float = 0.2
    reserve: float = 10.0
    balance: float = field(init=False)

    def __post_init__(self) -> None:
        self.balance = self.reserve

    def deposit(self) -> None:
        self.balance = min(self.balance + self.ratio, self.reserve)

    def withdraw(self) -> bool:
        if self.balance < 1.0:
            return False
        self.balance -= 1.0
        return True


@dataclass
class Tries:
    """One call's attempts: whether another is made, and after how long.

    An attempt that failed while the endpoint was taken as down (or starting) is not a
    try: the call waits for the endpoint instead, so an outage within the breaker's
    deadline costs no section (the deadline bounds the wait). A call that used up its
    tries while the endpoint was healthy takes more from the lane's ``budget``.
    """

    policy: RetryPolicy
    budget: RetryBudget | None = None
    sent: int = 0  # attempts made
    waited_out: int = 0  # ... that failed while the endpoint was down: not tries
    granted: int = 0  # tries taken from the budget
    down: bool = False  # the latest attempt failed while the endpoint was down
    _backoff: wait_random_exponential = field(init=False)

    def __post_init__(self) -> None:
        self._backoff = wait_random_exponential(
            multiplier=self.policy.base_delay, max=self.policy.max_delay
        )

    @property
    def spent(self) -> int:
        """The tries spent: attempts, less those waited out."""
        return self.sent - self.waited_out

    def begin(self) -> int:
        """A new attempt is made; returns its try number (its timeout grows with it)."""
        self.sent += 1
        self.down = False
        if self.budget is not None and self.sent == 1:
            self.budget.deposit()
        return self.spent

    def ended(self, *, failed_while_down: bool) -> None:
        """The attempt ended (said by the admission that let it through)."""
        self.down = failed_while_down
        if failed_while_down:
            self.waited_out += 1

    def again(self, error: BaseException | None, *, stopping: bool) -> bool:
        """Whether to make another attempt after ``error``."""
        if stopping or not isinstance(error, ProviderError):
            return False
        if self.spent < self.policy.attempts_for(error) + self.granted:
            return True
        if (
            self.policy.budgeted(error)
            and self.granted < self.policy.budget_tries
            and self.budget is not None
            and self.budget.withdraw()
        ):
            self.granted += 1
            logger.debug("another try from the budget (%.1f left)", self.budget.balance)
            return True
        return False

    def pause(self, state: RetryCallState) -> float:
        """How long to wait before the next attempt: nothing when the endpoint is down
        (the attempt waits for the breaker's probe instead), the ``Retry-After`` of a
        429, else a jittered exponential back-off on the tries spent."""
        if self.down:
            return 0.0
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.policy.max_delay)
        counted = copy.copy(state)  # tries from the budget wait as long as the last one
        counted.attempt_number = max(min(self.spent, self.policy.max_attempts), 1)
        return float(self._backoff(counted))


def health_outcome(error: BaseException | None) -> Outcome:
    """What an attempt's end says about the endpoint: only connection trouble, 5xx and
    garbage answers are failures; a server that says it is starting is warming; an answer
    that refuses the request (4xx) shows a live endpoint; a 429 is not health, and a call
    that never reached it says nothing."""
    if error is None:
        return "success"
    if isinstance(error, ProviderUnreachableError):
        return "neutral"  # the breaker's own verdict, not an attempt
    if isinstance(error, ProviderStartingError):
        return "warming"
    if isinstance(error, NetworkError) and error.status is None and error.unreached:
        return "unreached"
    if isinstance(error, NetworkError | ServerError | BadResponseError):
        return "failure"
    if isinstance(error, RateLimitError):
        return "neutral"  # it neither opens nor closes the breaker
    if isinstance(error, AuthError | RequestRefusedError | ContextLengthError):
        return "success"
    if isinstance(error, ProviderError) and not isinstance(error, CircuitOpenError | StopRequested):
        return "failure"  # the model itself failed (local provider)
    return "neutral"


@dataclass
class Pacer:
    """Client-side budget: requests and tokens per minute, spread evenly.

    Requests start at least ``60 / rpm`` seconds apart; tokens come from a bucket that
    refills continuously and holds ten seconds' worth (or one request's), so a long
    video paces itself instead of bursting into 429s. A 429 slows the pace to 70 %;
    successes bring it back by 5 % at a time; its ``Retry-After`` holds every request of
    the lane, not only the one that was refused.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    factor: float = 1.0
    _next_start: float = 0.0
    _tokens: float | None = None
    _refilled: float = field(default=0.0)
    _hold_until: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def active(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute)

    def hold(self, seconds: float) -> None:
        """The endpoint asked for a pause (a 429's ``Retry-After``): no request of the
        lane starts before it is over."""
        self._hold_until = max(self._hold_until, self.clock() + seconds)

    @property
    def held_for(self) -> float:
        return max(self._hold_until - self.clock(), 0.0)

    async def acquire(self, tokens: int) -> float:
        """Wait for a slot for a request of about ``tokens``; returns the seconds waited."""
        waited = self.held_for
        if waited:
            await self.sleep(waited)
        if not self.active:
            return waited
        async with self._lock:
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
