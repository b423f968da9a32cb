"""A provider's circuit breaker, written as a state machine (DESIGN §7).

The states and the events that move between them are in ``TRANSITIONS``, and every move
goes through ``CircuitBreaker._go``, which also does what entering a state means (the
clocks, the counters, the one log line). ``permit`` is asked before each attempt is sent
and ``record`` is told how it ended; the verdicts are taken there and nowhere else.

The endpoint is judged by calls, not by attempts in the order they finish: each call (all
the attempts for one request) has one entry in a window of the most recent calls, made
when it is first sent and showing how its latest attempt ended. A call still waiting for
its answer counts as not failed, so failures that come back at once, while the slow
successes are on their way, are still seen as a share of all the calls sent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from yttl.errors import CircuitOpenError, ProviderUnreachableError, StopRequested

__all__ = ["TRANSITIONS", "BreakerOptions", "CircuitBreaker", "Event", "Outcome", "State"]

logger = logging.getLogger(__name__)

Outcome = Literal["success", "failure", "unreached", "warming", "neutral"]
"""What an attempt's end says of the endpoint: it answered well; it answered badly (5xx,
garbage) or timed out; it could not be reached at all (refused, no such host); it says it
is starting (503 "Loading model", 503 with Retry-After); nothing (429, cancelled)."""


class State(StrEnum):
    CLOSED = "closed"  # calls go
    OPEN = "open"  # down: calls wait for a probe
    WARMING = "warming"  # starting (loading its model): calls wait for a probe
    HALF_OPEN = "half-open"  # one probe is out: calls wait for its answer


class Event(StrEnum):
    TRIP = "trip"  # too many of the recent calls failed
    WARMS = "warms"  # the endpoint says it is starting
    PROBE = "probe"  # the pause is over: one call goes to see
    ANSWERED = "answered"  # a call was answered well
    PROBE_FAILED = "probe failed"  # the probe got a failure
    PROBE_VOID = "probe void"  # the probe ended with no verdict (cancelled, a 429)


TRANSITIONS: dict[tuple[State, Event], State | None] = {
    (State.CLOSED, Event.TRIP): State.OPEN,
    (State.CLOSED, Event.WARMS): State.WARMING,
    (State.OPEN, Event.WARMS): State.WARMING,
    (State.OPEN, Event.PROBE): State.HALF_OPEN,
    (State.WARMING, Event.PROBE): State.HALF_OPEN,
    (State.HALF_OPEN, Event.PROBE_FAILED): State.OPEN,
    (State.HALF_OPEN, Event.WARMS): State.WARMING,
    (State.HALF_OPEN, Event.PROBE_VOID): None,  # back to where the probe went from
    (State.OPEN, Event.ANSWERED): State.CLOSED,
    (State.WARMING, Event.ANSWERED): State.CLOSED,
    (State.HALF_OPEN, Event.ANSWERED): State.CLOSED,
}
"""Every move the breaker can make; an event with no entry for the state changes nothing."""


@dataclass(frozen=True)
class BreakerOptions:
    window: int = 20  # the recent calls the failure rate is taken over
    min_calls: int = 10  # no verdict on fewer
    failure_rate: float = 0.7  # open at this share of failed calls in the window
    cooldown: float = 5.0  # before the first probe; doubles after each failed probe
    deadline: float = 60.0  # down (or starting) this long: waiting calls fail
    max_cooldown: float | None = None  # the longest pause between probes; deadline / 4
    cold_failures: int = 3  # a provider that never succeeded opens after this many
    cold_cooldown: float = 2.0  # ... and is probed this soon
    cold_deadline: float = 8.0  # ... and, when it answers only errors, is given up this soon
    warming_interval: float = 1.0  # between probes of a starting endpoint (or Retry-After)

    @property
    def probe_interval(self) -> float:
        """The cap on the pause between probes: short enough that an endpoint that comes
        back well within the deadline is seen before it, and that probing goes on after."""
        cap = self.max_cooldown if self.max_cooldown is not None else self.deadline / 4
        return max(self.cooldown, cap)


class CircuitBreaker:
    """Closed, open, warming, half-open; judged on the share of failed calls in a window.

    With many calls in flight, "N failures in a row" happens by chance at a modest fault
    rate, so the verdict is a share of at least ``min_calls`` calls. While the endpoint is
    down, callers wait (in ``permit``) for one probe call instead of failing; only when it
    stays down past ``deadline`` do they fail with ``CircuitOpenError``. Probing never
    stops: past the deadline a caller that comes when a probe is due is that probe, so a
    long-lived process sees the endpoint come back whenever it does.

    An endpoint that says it is starting is waited for up to ``deadline``, probed every
    ``warming_interval`` (or its ``Retry-After``), and the wait is said once. One that
    has not once answered well (``answered``) and only fails is judged sooner: when
    nobody is there (refused, no such host) the first failed probe ends it; when it
    answers, but only errors, the probes go on for ``cold_deadline``. Then every waiting
    caller gets ``ProviderUnreachableError`` naming ``target``: a dead or wrong URL is no
    outage to wait out.
    """

    def __init__(
        self,
        name: str,
        options: BreakerOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        target: str | None = None,
    ) -> None:
        self.name = name
        self.options = options or BreakerOptions()
        self.target = target
        self._clock = clock
        self.state = State.CLOSED
        self.trips = 0
        self.probes = 0
        self.warmups = 0  # times the endpoint said it was starting
        self.answered = False  # a call has succeeded: what fails now is an outage
        self._calls: OrderedDict[str, bool | None] = OrderedDict()  # call -> failed, or None
        self._unnamed = itertools.count()
        self._cold_status: int | None = None  # the last HTTP status a cold endpoint answered
        self._cold_answers = False  # ... and whether it answered at all (5xx, garbage)
        self._cold_attempts = 0  # attempts failed since the start, while none succeeded
        self._retry_after: float | None = None  # what a starting endpoint asked for
        self._warming = False  # a wait for a starting endpoint began since the last good answer
        self._resting = State.OPEN  # the state a probe went out from
        self._opened_at = 0.0
        self._down_since = 0.0
        self._cooldown = self.options.cooldown
        self._unreachable_since: float | None = None
        self._changed = asyncio.Event()

    # -- what callers read -------------------------------------------------------------

    @property
    def failure_rate(self) -> float:
        """The share of the window's calls whose latest attempt failed (calls waiting for
        their answer count as not failed)."""
        failed = sum(1 for verdict in self._calls.values() if verdict)
        return failed / len(self._calls) if self._calls else 0.0

    @property
    def down(self) -> bool:
        """The endpoint is taken as down or starting: a call that failed now waits for it
        instead of spending one of its tries."""
        return self.state != State.CLOSED

    @property
    def next_probe_in(self) -> float:
        """Seconds until a probe may go (0 when one may go now or none is waited for)."""
        if self.state not in (State.OPEN, State.WARMING):
            return 0.0
        return max(self._opened_at + self._cooldown - self._clock(), 0.0)

    # -- the state machine -------------------------------------------------------------

    def _go(self, event: Event, *, cold: bool = False, retry_after: float | None = None) -> None:
        """Make the move ``TRANSITIONS`` gives for ``event``, and do what entering the new
        state means."""
        before = self.state
        if (before, event) not in TRANSITIONS:
            return
        after = TRANSITIONS[before, event] or self._resting
        now = self._clock()
        if after is State.HALF_OPEN:
            self._resting = before
            self.probes += 1
            logger.info("%s: trying one call", self.name)
        elif after is State.CLOSED:
            if before is State.WARMING or self._resting is State.WARMING:
                logger.info("%s: the endpoint is ready", self.name)
            else:
                logger.info("%s: the endpoint answers again; circuit closed", self.name)
            self._calls.clear()
            self._cooldown = self.options.cooldown
            self._unreachable_since = None
            self._warming = False
        elif after is State.WARMING:
            interval = min(self.options.warming_interval, self.options.cooldown)
            if retry_after is not None:
                interval = retry_after
            self._cooldown = min(max(interval, 0.05), self.options.probe_interval)
            self._opened_at = now
            self._unreachable_since = None  # it is there after all
            # one wait per stretch without a good answer: "loading" and errors in turn
            # are one start that goes badly, not a new start each time it says "loading"
            if not self._warming:
                self._warming = True
                self._down_since = now
                self.warmups += 1
                said = (
                    "it says it is loading the model"
                    if retry_after is None
                    else f"it says it is starting (HTTP 503, Retry-After {retry_after:g} s)"
                )
                logger.warning(
                    "waiting for %s at %s: %s (up to %.0f s)",
                    self.name,
                    self.target or "its endpoint",
                    said,
                    self.options.deadline,
                )
        elif event is Event.TRIP:
            self.trips += 1
            self._opened_at = self._down_since = now
            cooldown = self.options.cooldown
            self._cooldown = min(self.options.cold_cooldown, cooldown) if cold else cooldown
            logger.log(
                logging.INFO if cold else logging.WARNING,
                "%s: %.0f %% of the last %d calls failed; circuit open, calls wait "
                "for a probe in %.0f s",
                self.name,
                100 * self.failure_rate,
                len(self._calls),
                self._cooldown,
            )
        elif event is Event.PROBE_FAILED:
            self._probe_failed(now)
        elif event is Event.PROBE_VOID:  # the next caller probes, now
            self._opened_at = now - self._cooldown
        self.state = after
        self._changed.set()
        self._changed = asyncio.Event()

    def _probe_failed(self, now: float) -> None:
        self._opened_at = now
        waited = now - self._down_since
        # nobody there: no model is loading, give up now; only errors: after a while
        cold_deadline = min(self.options.cold_deadline, self.options.deadline)
        cold_over = not self._cold_answers or waited >= cold_deadline
        if not self.answered and self.target is not None and cold_over:
            self._unreachable_since = now
            logger.info(
                "%s: %s has not once answered well; giving up on it", self.name, self.target
            )
        self._cooldown = min(self._cooldown * 2, self.options.probe_interval)
        logger.info("%s: the probe failed; next in %.0f s", self.name, self._cooldown)

    # -- the two doors -----------------------------------------------------------------

    async def permit(self, stop: asyncio.Event | None = None, call: str | None = None) -> bool:
        """Wait until a call may go; True when this call is the probe. ``call`` names the
        call (all its attempts) in the window. Setting ``stop`` ends the wait with
        ``StopRequested``."""
        patience: float | None = None  # how long to wait for a probe past the deadline
        while True:
            if self.state is State.CLOSED:
                self._sent(call)
                return False
            if stop is not None and stop.is_set():
                raise StopRequested(f"{self.name}: not called, the run is stopping")
            now = self._clock()
            changed = self._changed
            until_probe = self._opened_at + self._cooldown - now
            if self.state is not State.HALF_OPEN and until_probe <= 0:
                self._go(Event.PROBE)
                self._sent(call)
                return True
            if self._unreachable_since is not None:  # until the next probe is due
                raise self._unreachable()
            left = self._down_since + self.options.deadline - now
            if self.state is State.HALF_OPEN:
                if left <= 0 and patience is None:  # past the deadline: the probe out
                    patience = now + self.options.probe_interval  # decides, if it is quick
                if patience is not None:
                    left = patience - now
            elif left > 0:
                left = min(left, until_probe)
            if left <= 0:
                raise self._over_deadline(now - self._down_since, until_probe)
            # a probe is out, or the pause before the next: wait for news, or for Ctrl-C
            waits = [asyncio.ensure_future(changed.wait())]
            if stop is not None:
                waits.append(asyncio.ensure_future(stop.wait()))
            try:
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for each in waits:
                    each.cancel()

    def record(
        self,
        outcome: Outcome,
        *,
        probe: bool = False,
        status: int | None = None,
        call: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The end of an attempt that ``permit`` let through (``status``: the HTTP status
        of a failure that was an answer; ``retry_after``: the pause a starting endpoint
        asked for)."""
        is_probe = probe and self.state is State.HALF_OPEN
        if outcome == "neutral":  # no verdict; a probe's turn goes to the next caller
            if is_probe:
                self._go(Event.PROBE_VOID)
            return
        if outcome == "warming":
            self._go(Event.WARMS, retry_after=retry_after)
            return
        if outcome == "success":
            self.answered = True
            self._cold_attempts = 0
            self._mark(call, failed=False)
            self._go(Event.ANSWERED)
            return
        if not self.answered:
            self._cold_attempts += 1
            self._cold_answers = self._cold_answers or outcome == "failure"
            self._cold_status = status or self._cold_status
        self._mark(call, failed=True)
        if is_probe:
            self._go(Event.PROBE_FAILED)
        elif self.state is State.CLOSED:
            cold = self._cold_verdict()
            if cold or self._verdict():
                self._go(Event.TRIP, cold=cold)

    # -- the window of calls -----------------------------------------------------------

    def _sent(self, call: str | None) -> None:
        if call is None or call in self._calls:
            return
        self._calls[call] = None
        while len(self._calls) > self.options.window:
            self._calls.popitem(last=False)

    def _mark(self, call: str | None, *, failed: bool) -> None:
        if call is None or call not in self._calls:  # unnamed, or gone from the window
            call = call or f"attempt {next(self._unnamed)}"
            self._sent(call)
        self._calls[call] = failed

    def _verdict(self) -> bool:
        enough = len(self._calls) >= self.options.min_calls
        return enough and self.failure_rate >= self.options.failure_rate

    def _cold_verdict(self) -> bool:
        """A provider never once answered well is judged after a few failed attempts, but
        at the same share of calls: the calls still waiting may yet be answered well."""
        return (
            not self.answered
            and self.target is not None
            and self._cold_attempts >= self.options.cold_failures
            and self.failure_rate >= self.options.failure_rate
        )

    # -- the errors waiting callers get ------------------------------------------------

    def _over_deadline(self, waited: float, until_probe: float) -> Exception:
        where = self.target or self.name
        starting = self.state is State.WARMING or self._resting is State.WARMING
        if starting and self.state is not State.OPEN:
            error = ProviderUnreachableError if not self.answered else CircuitOpenError
            return error(
                f"{self.name}: {where} was still starting (loading its model) after {waited:.0f} s",
                hint="wait for the server to be ready and run again, or raise --breaker-deadline",
            )
        if not self.answered and self._cold_answers and self.target is not None:
            return self._unreachable()  # it never once worked: say so, not "down"
        return CircuitOpenError(
            f"{self.name}: not called; the endpoint has failed for {waited:.0f} s (circuit "
            f"open; next probe in {max(until_probe, 0):.0f} s)",
            hint="check that the provider is up, or raise breaker_deadline",
        )

    def _unreachable(self) -> ProviderUnreachableError:
        where = self.target or self.name
        if self._cold_answers:
            answer = f"HTTP {self._cold_status}" if self._cold_status else "no valid answer"
            return ProviderUnreachableError(
                f"{self.name}: {where} answers only errors ({answer}): not one call has succeeded",
                status=self._cold_status,
                hint="is the server well and is this the URL of its OpenAI-compatible API "
                "(…/v1)? (-ou, --NAME-base-url or the profile's base_url); or choose "
                "another provider with -lp",
            )
        return ProviderUnreachableError(
            f"{self.name}: cannot reach {where}: it has not answered once",
            hint="is the server running and the URL right? (-ou, --NAME-base-url or the "
            "profile's base_url); or choose another provider with -lp",
        )
