"""Retries, pacing and the circuit breaker: the parts a provider's lane is made of.

``RetryPolicy`` says per error category (DESIGN §7) whether and how often a call is worth
repeating; ``Pacer`` spreads requests and tokens under the provider's budget;
``CircuitBreaker`` judges the endpoint's health on the failure rate of its recent calls
and makes callers wait for a probe while it is down. ``yttl.scheduler`` puts them together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from yttl.errors import (
    AuthError,
    BadResponseError,
    CircuitOpenError,
    ContextLengthError,
    NetworkError,
    ProviderError,
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
    "RetryPolicy",
    "health_outcome",
]

logger = logging.getLogger(__name__)

Outcome = Literal["success", "failure", "unreached", "neutral"]
"""What a call's end says of the endpoint: it answered well; it answered badly (5xx,
garbage) or timed out; it could not be reached at all (refused, no such host); nothing."""


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
            AuthError | ContextLengthError | RequestRefusedError | ResourceError
            | CircuitOpenError | StopRequested | ProviderUnreachableError,
        ):  # fmt: skip
            return 1  # repeating cannot help
        if isinstance(error, RateLimitError):
            return max(self.max_attempts, self.rate_limit_attempts)
        if isinstance(error, ProviderError):
            return self.max_attempts
        return 1

    def timeout_for(self, attempt: int) -> float | None:
        return None if self.timeout is None else self.timeout * 1.5 ** (attempt - 1)


def health_outcome(error: BaseException | None) -> Outcome:
    """What a call's end says about the endpoint: only connection trouble, 5xx and
    garbage answers are failures; an answer that refuses the request (4xx, 429) shows a
    live endpoint, and a call that never reached it says nothing."""
    if error is None:
        return "success"
    if isinstance(error, ProviderUnreachableError):
        return "neutral"  # the breaker's own verdict, not an attempt
    if isinstance(error, NetworkError) and error.status is None and error.unreached:
        return "unreached"
    if isinstance(error, NetworkError | ServerError | BadResponseError):
        return "failure"
    if isinstance(error, AuthError | RequestRefusedError | ContextLengthError | RateLimitError):
        return "success"
    if isinstance(error, ProviderError) and not isinstance(error, CircuitOpenError | StopRequested):
        return "failure"  # the model itself failed (local provider)
    return "neutral"


@dataclass(frozen=True)
class BreakerOptions:
    window: int = 20  # the recent calls the failure rate is taken over
    min_calls: int = 10  # no verdict on fewer
    failure_rate: float = 0.7  # open at this share of failures in the window
    cooldown: float = 5.0  # before the first probe; doubles after each failed probe
    deadline: float = 60.0  # down this long: waiting calls fail instead of waiting on
    max_cooldown: float | None = None  # the longest pause between probes; deadline / 4
    cold_failures: int = 3  # a provider that never succeeded opens after this many
    cold_cooldown: float = 2.0  # ... and is probed this soon
    cold_deadline: float = 8.0  # ... and, when it answers only errors, is given up this soon

    @property
    def probe_interval(self) -> float:
        """The cap on the pause between probes: short enough that an endpoint that comes
        back well within the deadline is seen before it, and that probing goes on after."""
        cap = self.max_cooldown if self.max_cooldown is not None else self.deadline / 4
        return max(self.cooldown, cap)


class CircuitBreaker:
    """Closed, open, half-open; judged on the failure rate over a window of recent calls.

    With many calls in flight, "N failures in a row" happens by chance at a modest fault
    rate, so the verdict is a rate over at least ``min_calls``. While the endpoint is
    down, callers wait (in ``permit``) for one probe call instead of failing; only when it
    stays down past ``deadline`` do they fail with ``CircuitOpenError``. Probing never
    stops: past the deadline a caller that comes when a probe is due is that probe, so a
    long-lived process sees the endpoint come back whenever it does.

    An endpoint that has not once answered a call well (``answered``) is judged sooner: a
    few failures open the circuit. When nobody is there (refused, no such host) the first
    failed probe ends it; when it answers, but only errors (a 5xx for every call), the
    probes go on for ``cold_deadline`` (a server still loading its model gets that long).
    Then every waiting caller gets ``ProviderUnreachableError`` naming ``target`` and the
    last status it answered: a dead or wrong URL is no outage to wait out. Callers that
    come later fail at once until the next probe is due.
    """

    def __init__(self, name: str, options: BreakerOptions | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 target: str | None = None) -> None:  # fmt: skip
        self.name = name
        self.options = options or BreakerOptions()
        self.target = target
        self._clock = clock
        self.state: Literal["closed", "open", "half-open"] = "closed"
        self.trips = 0
        self.probes = 0
        self.answered = False  # a call has succeeded: what fails now is an outage
        self._window: deque[bool] = deque(maxlen=self.options.window)
        self._cold_failures = 0
        self._cold_status: int | None = None  # the last HTTP status a cold endpoint answered
        self._cold_answers = False  # ... and whether it answered at all (5xx, garbage)
        self._opened_at = 0.0
        self._down_since = 0.0
        self._cooldown = self.options.cooldown
        self._unreachable_since: float | None = None
        self._changed = asyncio.Event()

    @property
    def failure_rate(self) -> float:
        return sum(self._window) / len(self._window) if self._window else 0.0

    @property
    def next_probe_in(self) -> float:
        """Seconds until a probe may go (0 when one may go now or the circuit is closed)."""
        if self.state != "open":
            return 0.0
        return max(self._opened_at + self._cooldown - self._clock(), 0.0)

    def _set(self, state: Literal["closed", "open", "half-open"]) -> None:
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()

    def _unreachable(self) -> ProviderUnreachableError:
        where = self.target or self.name
        if self._cold_answers:
            answer = f"HTTP {self._cold_status}" if self._cold_status else "no valid answer"
            return ProviderUnreachableError(
                f"{self.name}: {where} answers only errors ({answer}): not one call has "
                "succeeded", status=self._cold_status,
                hint="is the server well and is this the URL of its OpenAI-compatible API "
                "(…/v1)? (-ou, --NAME-base-url or the profile's base_url); or choose "
                "another provider with -lp",
            )  # fmt: skip
        return ProviderUnreachableError(
            f"{self.name}: cannot reach {where}: it has not answered once",
            hint="is the server running and the URL right? (-ou, --NAME-base-url or the "
            "profile's base_url); or choose another provider with -lp",
        )

    @property
    def down(self) -> bool:
        """The endpoint is taken as down (open or half-open): a call that failed now waits
        for it instead of spending one of its tries."""
        return self.state != "closed"

    async def permit(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until a call may go; True when this call is the half-open probe. Setting
        ``stop`` ends the wait with ``StopRequested``."""
        while True:
            if self.state == "closed":
                return False
            if stop is not None and stop.is_set():
                raise StopRequested(f"{self.name}: not called, the run is stopping")
            now = self._clock()
            changed = self._changed
            until_probe = self._opened_at + self._cooldown - now
            if self.state == "open" and until_probe <= 0:
                self._set("half-open")
                self.probes += 1
                logger.info("%s: circuit half-open, trying one call", self.name)
                return True
            if self._unreachable_since is not None:  # until the next probe is due
                raise self._unreachable()
            left = self._down_since + self.options.deadline - now
            if left <= 0:
                if not self.answered and self._cold_answers and self.target is not None:
                    raise self._unreachable()  # it never once worked: say so, not "down"
                raise CircuitOpenError(
                    f"{self.name}: not called; the endpoint has failed for "
                    f"{now - self._down_since:.0f} s (circuit open; next probe in "
                    f"{max(until_probe, 0):.0f} s)",
                    hint="check that the provider is up, or raise breaker_deadline",
                )
            if self.state == "open":
                left = min(left, until_probe)
            # half-open (a probe is out) or cooling down: wait for news, or for Ctrl-C
            waits = [asyncio.ensure_future(changed.wait())]
            if stop is not None:
                waits.append(asyncio.ensure_future(stop.wait()))
            try:
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for each in waits:
                    each.cancel()

    def record(self, outcome: Outcome, *, probe: bool = False, status: int | None = None) -> None:
        """The end of a call that ``permit`` let through (``status``: the HTTP status of
        a failure that was an answer)."""
        if outcome == "neutral":
            if probe and self.state == "half-open":  # no verdict: let the next caller probe
                self._opened_at = self._clock() - self._cooldown
                self._set("open")
            return
        if outcome == "success":  # it works: whatever fails from now on is an outage
            self.answered = True
            self._cold_failures = 0
            self._unreachable_since = None
        elif outcome == "failure" and not self.answered:
            self._cold_answers = True
            self._cold_status = status or self._cold_status
        if outcome == "success":
            self._window.append(False)
            if self.state != "closed":
                logger.info("%s: the endpoint answers again; circuit closed", self.name)
                self._window.clear()
                self._cooldown = self.options.cooldown
                self._set("closed")
            return
        self._window.append(True)
        if self.state == "half-open" and probe:
            self._opened_at = self._clock()
            waited = self._opened_at - self._down_since
            # nobody there: no model is loading, give up now; only errors: after a while
            cold_deadline = min(self.options.cold_deadline, self.options.deadline)
            cold_over = not self._cold_answers or waited >= cold_deadline
            if not self.answered and self.target is not None and cold_over:
                self._unreachable_since = self._opened_at
                logger.info("%s: %s has not once answered well; giving up on it", self.name,
                            self.target)  # fmt: skip
            self._cooldown = min(self._cooldown * 2, self.options.probe_interval)
            self._set("open")
            logger.info("%s: the probe failed; next in %.0f s", self.name, self._cooldown)
        elif self.state == "closed":
            self._cold_failures += 1
            cold = (not self.answered and self.target is not None
                    and self._cold_failures >= self.options.cold_failures)  # fmt: skip
            if cold or (len(self._window) >= self.options.min_calls
                        and self.failure_rate >= self.options.failure_rate):  # fmt: skip
                self.trips += 1
                self._opened_at = self._down_since = self._clock()
                self._cooldown = (min(self.options.cold_cooldown, self.options.cooldown)
                                  if cold else self.options.cooldown)  # fmt: skip
                self._set("open")
                logger.log(logging.INFO if cold else logging.WARNING,
                           "%s: %.0f %% of the last %d calls failed; circuit open, calls wait "
                           "for a probe in %.0f s", self.name, 100 * self.failure_rate,
                           len(self._window), self._cooldown)  # fmt: skip


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
