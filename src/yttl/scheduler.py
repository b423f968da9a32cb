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
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_never

from yttl.breaker import BreakerOptions, CircuitBreaker, Outcome
from yttl.errors import (
    AuthError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    RateLimitError,
    StopRequested,
)
from yttl.perf import PerformanceTracker
from yttl.resilience import Pacer, RetryBudget, RetryPolicy, Tries, health_outcome

__all__ = [
    "Admission",
    "CallPolicy",
    "Lane",
    "LaneSpec",
    "LocalAdmission",
    "Scheduler",
    "direct_call",
]

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


@dataclass(frozen=True)
class LaneSpec:
    """A provider's budgets, as plain data: what a lane's admission is built from, here or
    in the Ray actor that keeps one limit for a whole cluster."""

    name: str
    max_concurrent: int
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    breaker: BreakerOptions | None = field(default_factory=BreakerOptions)
    target: str | None = None  # the endpoint's URL, named when it cannot be reached


class Admission(Protocol):
    """Who lets an attempt be sent: ``enter`` returns with a slot held, the breaker's
    permission and the pacing budget spent (True when the attempt is the breaker's probe);
    ``leave`` gives the slot back with what the attempt said of the endpoint. ``call``
    names the call the attempt is one of: the breaker judges calls, not attempts."""

    async def enter(self, label: str, tokens: int, call: str | None = None) -> bool: ...

    async def leave(
        self,
        outcome: Outcome,
        probe: bool,
        rate_limited: bool,
        status: int | None = None,
        call: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        """Returns whether the endpoint is now taken as down (its breaker not closed)."""
        ...


class LocalAdmission:
    """Admission within this process: a semaphore, a breaker and a pacer."""

    def __init__(self, spec: LaneSpec, stop: asyncio.Event | None = None) -> None:
        self.spec = spec
        self.breaker = (
            CircuitBreaker(spec.name, spec.breaker, target=spec.target) if spec.breaker else None
        )
        self.stop = stop or asyncio.Event()
        self.pacer = Pacer(spec.requests_per_minute, spec.tokens_per_minute, sleep=self._pause)
        self._slots = asyncio.Semaphore(max(1, spec.max_concurrent))
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent = 0

    async def _pause(self, seconds: float) -> None:
        """A pacing pause, cut short by a stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _check_stop(self, label: str) -> None:
        if self.stop.is_set():
            raise StopRequested(f"{label}: not started, the run is stopping")

    async def enter(self, label: str, tokens: int, call: str | None = None) -> bool:
        await self._slots.acquire()
        probe = False
        try:
            # The breaker is asked with the slot in hand, right before sending: calls
            # that queued while the endpoint was healthy do not rush a dead one.
            if self.breaker is not None:
                probe = await self.breaker.permit(self.stop, call)
            self._check_stop(label)
            await self.pacer.acquire(tokens)
            self._check_stop(label)
        except BaseException:
            if probe and self.breaker is not None:
                self.breaker.record("neutral", probe=True)
            self._slots.release()
            raise
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.sent += 1
        return probe

    async def leave(
        self,
        outcome: Outcome,
        probe: bool,
        rate_limited: bool,
        status: int | None = None,
        call: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        self.in_flight -= 1
        self._slots.release()
        if self.breaker is not None:
            self.breaker.record(
                outcome, probe=probe, status=status, call=call, retry_after=retry_after
            )
        if rate_limited:
            self.pacer.slow_down()
            if retry_after is not None:
                self.pacer.hold(retry_after)
        elif outcome == "success":
            self.pacer.recover()
        return self.breaker is not None and self.breaker.down


class Lane:
    """One provider's share of the scheduler: its admission (slots, breaker, pacing) and
    how each call is attempted (``Tries``: retries, back-off; a timeout from sending)."""

    def __init__(
        self,
        name: str,
        *,
        policy: RetryPolicy,
        max_concurrent: int = 1,
        admission: Admission | None = None,
        stop: asyncio.Event | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._stop = stop or asyncio.Event()
        self.admission = admission or LocalAdmission(
            LaneSpec(name, max_concurrent, breaker=None), self._stop
        )
        self._sleep = sleep or self._until_stopped
        self.budget = budget or RetryBudget()
        self._fatal: ProviderError | None = None  # a refused key or model: nothing can succeed
        self._said_too_long = False  # a 429's Retry-After beyond our waits was said

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self.admission.breaker if isinstance(self.admission, LocalAdmission) else None

    @property
    def max_in_flight(self) -> int:
        return self.admission.max_in_flight if isinstance(self.admission, LocalAdmission) else 0

    @property
    def sent(self) -> int:
        return self.admission.sent if isinstance(self.admission, LocalAdmission) else 0

    async def _until_stopped(self, seconds: float) -> None:
        """The back-off between attempts, cut short by a stop: a Retry-After of a minute
        must not hold the first Ctrl-C."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _refuse_if_fatal(self) -> None:
        if self._fatal is not None:
            raise type(self._fatal)(self._fatal.message, hint=self._fatal.hint)

    async def _send(
        self, label: str, attempt: Callable[[], Awaitable[T]], tries: Tries, call: str, tokens: int
    ) -> T:
        """One attempt, from the slot to the answer; tells ``tries`` how it ended."""
        number = tries.begin()
        self._refuse_if_fatal()
        probe = await self.admission.enter(label, tokens, call)
        if self._fatal is not None:  # answered while this call waited for its slot
            await self.admission.leave("neutral", probe, False, call=call)
            self._refuse_if_fatal()
        outcome: Outcome = "neutral"  # cancelled before an answer: no verdict
        error: ProviderError | None = None
        timeout = self.policy.timeout_for(number)
        try:
            async with asyncio.timeout(timeout):  # from sending, not from queueing
                result = await attempt()
            outcome = "success"
            return result
        except TimeoutError as exc:
            outcome = "failure"
            raise NetworkError(f"{label}: no answer within {timeout:.0f} s") from exc
        except ProviderError as exc:
            outcome, error = health_outcome(exc), exc
            if isinstance(exc, AuthError | ModelNotFoundError):
                self._fatal = exc
            if self.policy.waits_too_long(exc):
                self._too_long(exc)
            raise
        finally:
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                retry_after = min(retry_after, self.policy.max_delay)
            if error is not None and self.policy.waits_too_long(error):
                retry_after = None  # no call waits for it: holding the lane only delays them
            down = await self.admission.leave(
                outcome,
                probe,
                isinstance(error, RateLimitError),
                getattr(error, "status", None),
                call=call,
                retry_after=retry_after,
            )
            tries.ended(failed_while_down=down and outcome in ("failure", "unreached", "warming"))

    async def __call__(
        self,
        label: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        tokens: int = 0,
        tracker: PerformanceTracker | None = None,
    ) -> T:
        tries = Tries(self.policy, self.budget)
        call = uuid.uuid4().hex  # the breaker's name for this call, all its attempts

        async def one_attempt() -> T:
            try:
                return await self._send(label, attempt, tries, call, tokens)
            except ProviderError as exc:
                self._failed(label, exc, tries, tracker)
                raise

        def counted(state: RetryCallState) -> None:
            if tracker is not None:
                tracker.count("retries")

        retrying = AsyncRetrying(
            stop=stop_never,
            wait=tries.pause,
            retry=lambda state: tries.again(
                state.outcome.exception() if state.outcome else None,
                stopping=self._stop.is_set(),
            ),
            before_sleep=counted,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(one_attempt)
        except ProviderError as exc:
            exc.attempts = tries.sent
            raise

    def _too_long(self, error: ProviderError) -> None:
        """A 429 that asks for longer than yttl waits: the call fails now, and the run
        says why once instead of going quiet for minutes."""
        wait = getattr(error, "retry_after", None) or 0.0
        error.message = f"{error.message}: it asks to wait {wait:.0f} s"
        error.args = (error.message,)
        error.hint = error.hint or "run the same command later: what is finished is kept"
        if not self._said_too_long:
            self._said_too_long = True
            logger.warning(
                "%s: rate limited; it asks to wait %.0f s, longer than the %.0f s yttl "
                "waits between tries: those calls are not retried",
                self.name,
                wait,
                self.policy.max_delay,
            )

    def _failed(
        self, label: str, error: ProviderError, tries: Tries, tracker: PerformanceTracker | None
    ) -> None:
        if tracker is not None and not isinstance(error, StopRequested):
            tracker.error(error.category)
        logger.debug(
            "%s: attempt %d failed (%s): %s", label, tries.sent, error.category, error.message
        )


class Scheduler:
    """The run's lanes, one per provider (and purpose), and its stop event.

    A lane is made the first time a provider is asked for and then shared: two videos of
    a batch pace themselves together under the provider's one limit.
    """

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self.stop = stop or asyncio.Event()
        self.halted: ProviderError | None = None  # why the run stopped, when not Ctrl-C
        self._lanes: dict[str, Lane] = {}

    def halt(self, reason: ProviderError) -> None:
        """Stop the run because of an answer after which no call can succeed (a refused
        key, an unknown model, an endpoint that never answered): what has not started is
        *not started*, not interrupted."""
        if self.halted is None and not self.stop.is_set():
            self.halted = reason
        self.stop.set()

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

    def stats(self) -> dict[str, dict[str, object]]:
        """Per lane: calls sent, the most in flight at once, breaker trips."""
        return {
            key: {
                "sent": lane.sent,
                "max_in_flight": lane.max_in_flight,
                "breaker_trips": lane.breaker.trips if lane.breaker else 0,
            }
            for key, lane in self._lanes.items()
        }
