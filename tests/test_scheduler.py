"""The run's scheduler: slots before timeouts, a breaker that judges health, shared lanes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from yttl.errors import (
    CircuitOpenError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    ProviderStartingError,
    ProviderUnreachableError,
    RateLimitError,
    RequestRefusedError,
    ServerError,
    StopRequested,
)
from yttl.perf import PerformanceTracker
from yttl.resilience import BreakerOptions, CircuitBreaker, RetryPolicy
from yttl.scheduler import Lane, LaneSpec, LocalAdmission, Scheduler


def _lane(
    max_concurrent: int = 2,
    *,
    timeout: float | None = None,
    attempts: int = 3,
    breaker: BreakerOptions | None = None,
) -> Lane:
    return Lane(
        "p",
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.01, timeout=timeout),
        admission=LocalAdmission(LaneSpec("p", max_concurrent, breaker=breaker)),
    )


def test_the_timeout_counts_from_sending_not_from_queueing() -> None:
    """Eight 0.3 s calls through two slots queue for up to 1.2 s: with a 0.5 s timeout
    started at the queue, six would time out; started at sending, none does."""
    lane = _lane(2, timeout=0.5, attempts=1)
    sent: list[int] = []

    async def call(i: int) -> int:
        async def attempt() -> int:
            sent.append(i)
            await asyncio.sleep(0.3)
            return i

        return await lane(f"call {i}", attempt)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(call(i) for i in range(8))))

    assert asyncio.run(main()) == list(range(8))
    assert sorted(sent) == list(range(8))  # every call went out exactly once
    assert lane.max_in_flight == 2 and lane.sent == 8


def test_a_shared_lane_bounds_the_calls_of_every_user_together() -> None:
    scheduler = Scheduler()
    made: list[Lane] = []

    def build(stop: asyncio.Event) -> Lane:
        made.append(Lane("p", max_concurrent=3, policy=RetryPolicy(), stop=stop))
        return made[-1]

    first, second = scheduler.lane("p chat", build), scheduler.lane("p chat", build)
    assert first is second and len(made) == 1
    in_flight = peak = 0

    async def attempt() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1

    async def main() -> None:  # two "videos", ten calls each
        await asyncio.gather(*(lane("c", attempt) for lane in (first, second) for _ in range(10)))

    asyncio.run(main())
    assert peak == 3


def _fast_failures_between_slow_successes(
    calls: int, faulty: set[int], failures: int, slots: int
) -> tuple[Callable[[int], Callable[[], Awaitable[str]]], list[int]]:
    """Attempts for ``calls`` calls: those in ``faulty`` fail ``failures`` times at once;
    every success waits until ``slots`` successes wait together (or no call is left to
    send), so that every fast failure that can come before the first success has come:
    the worst order for a judge that counts attempts as they finish. Counts, not clocks."""
    waiting = 0
    release = asyncio.Event()
    ended: list[int] = []  # calls answered well

    def attempts(i: int) -> Callable[[], Awaitable[str]]:
        left = failures if i in faulty else 0

        async def attempt() -> str:
            nonlocal left, waiting
            await asyncio.sleep(0)  # an answer, even at once, comes on a later turn
            if left:
                left -= 1
                raise ServerError("p: server error (HTTP 500)", status=500)
            waiting += 1
            if waiting >= min(slots, calls - len(ended)):
                release.set()
            with contextlib.suppress(TimeoutError):  # liveness only, should a judge block
                await asyncio.wait_for(release.wait(), 10)  # the others (no verdict rests on it)
            waiting -= 1
            ended.append(i)
            return "ok"

        return attempt

    return attempts, ended


@pytest.mark.parametrize(
    "faulty", [range(8), range(0, 24, 3), range(16, 24)], ids=["first", "mixed", "last"]
)
def test_scattered_transient_faults_never_open_the_breaker(faulty: range) -> None:
    """A third of the calls fail three times at once (all their tries) while the others
    wait, 16 in flight: the endpoint is judged by calls, each counted once however its
    attempts end, so the fast failures are the share of the calls they are, and it never
    opens, not even the quick verdict on a provider not yet heard from; the calls that
    used up their tries on the healthy endpoint get more from the lane's budget, so none
    is lost. Whatever the order of the answers: counts, not clocks."""
    attempts, ended = _fast_failures_between_slow_successes(24, set(faulty), 3, 16)
    lane = _target_lane(BreakerOptions(cooldown=5.0, deadline=60.0), attempts=3, concurrent=16)

    async def main() -> list[BaseException | str]:
        calls = (lane(f"c{i}", attempts(i)) for i in range(24))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    assert asyncio.run(main()) == ["ok"] * 24
    assert lane.breaker is not None and lane.breaker.trips == 0
    assert lane.breaker.state == "closed" and sorted(ended) == list(range(24))
    assert lane.sent == 24 + 8 * 3  # every faulty call took one try from the budget


def test_the_retry_budget_is_bounded() -> None:
    """A prompt the endpoint can never answer takes a few more tries, not a storm; a
    request refused for its own fault takes none."""
    lane = _lane(2, attempts=3)
    tries: list[str] = []

    def failing(error: ProviderError) -> Callable[[], Awaitable[str]]:
        async def attempt() -> str:
            tries.append(type(error).__name__)
            raise error

        return attempt

    with pytest.raises(ServerError):
        asyncio.run(lane("c", failing(ServerError("p: server error (HTTP 500)", status=500))))
    assert len(tries) == 3 + lane.policy.budget_tries
    balance = lane.budget.balance
    tries.clear()
    with pytest.raises(RequestRefusedError):
        asyncio.run(lane("c", failing(RequestRefusedError("p: request refused (HTTP 400)"))))
    assert len(tries) == 1 and lane.budget.balance == pytest.approx(balance + 0.2)


def test_a_dead_endpoint_opens_within_a_few_calls_and_fails_waiters_at_the_deadline() -> None:
    options = BreakerOptions(window=10, min_calls=5, failure_rate=0.7, cooldown=0.1, deadline=0.5)
    lane = _lane(4, breaker=options, attempts=5)
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        raise NetworkError("connection refused")

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(20)), return_exceptions=True)
        )

    started = time.monotonic()
    results = asyncio.run(main())
    assert all(isinstance(r, CircuitOpenError | NetworkError) for r in results)
    assert sum(isinstance(r, CircuitOpenError) for r in results) >= 10
    assert lane.breaker is not None and lane.breaker.trips == 1
    assert sent <= 5 + 4 + 3  # the verdict, the calls already sent, a probe or two
    assert time.monotonic() - started < 2


def test_waiting_calls_wait_for_the_probe_and_go_through_when_it_answers() -> None:
    options = BreakerOptions(window=10, min_calls=4, failure_rate=0.7, cooldown=0.2, deadline=5)
    lane = _lane(8, breaker=options, attempts=4)
    assert lane.breaker is not None
    breaker = lane.breaker
    sent_while_open = 0

    async def attempt() -> str:  # down until the first probe
        nonlocal sent_while_open
        await asyncio.sleep(0)
        if breaker.probes < 1:
            raise ServerError("503")
        if breaker.state != "closed":
            sent_while_open += 1
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(12))))

    assert asyncio.run(main()) == ["ok"] * 12  # nobody failed with "circuit open"
    assert breaker.trips == 1
    assert breaker.state == "closed" and sent_while_open == 1  # only the probe


def test_a_refused_request_never_counts_against_the_endpoint_and_is_never_retried() -> None:
    lane = _lane(4, breaker=BreakerOptions(window=5, min_calls=3, failure_rate=0.5), attempts=3)
    tries = 0

    async def attempt() -> str:
        nonlocal tries
        tries += 1
        raise RequestRefusedError("400: bad request")

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(10)), return_exceptions=True)
        )

    results = asyncio.run(main())
    assert tries == 10  # one attempt each
    assert all(isinstance(r, RequestRefusedError) for r in results)
    assert lane.breaker is not None and lane.breaker.state == "closed"


def test_an_unknown_model_closes_the_lane_at_the_first_answer() -> None:
    lane = _lane(2, attempts=3)
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        await asyncio.sleep(0.01)
        raise ModelNotFoundError("openai: the provider has no model 'gpt-4o-mimi'")

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(10)), return_exceptions=True)
        )

    results = asyncio.run(main())
    assert all(isinstance(r, ModelNotFoundError) for r in results)
    assert sent == 2  # the two in flight when the first answer came; nothing after


def test_a_probe_that_ends_without_an_answer_releases_the_half_open_state() -> None:
    async def main() -> None:
        breaker = CircuitBreaker("p", BreakerOptions(min_calls=2, window=2, cooldown=0.05))
        breaker.record("failure")
        breaker.record("failure")
        assert breaker.state == "open"
        assert await breaker.permit() is True  # the probe, after the cooldown
        waiter = asyncio.create_task(breaker.permit())
        await asyncio.sleep(0.02)
        assert not waiter.done()  # waits while the probe is out
        breaker.record("neutral", probe=True)  # cancelled: no verdict
        assert await asyncio.wait_for(waiter, 1) is True  # the next caller probes
        breaker.record("success", probe=True)
        assert breaker.state == "closed"

    asyncio.run(main())


def test_stopping_ends_calls_waiting_for_a_slot_or_the_breaker() -> None:
    async def main() -> list[BaseException | str]:
        stop = asyncio.Event()
        lane = Lane("p", max_concurrent=1, policy=RetryPolicy(), stop=stop)

        async def slow() -> str:
            await asyncio.sleep(0.1)
            return "done"

        calls = [asyncio.create_task(lane("c", slow)) for _ in range(3)]
        await asyncio.sleep(0.02)
        stop.set()
        return list(await asyncio.gather(*calls, return_exceptions=True))

    first, *rest = asyncio.run(main())
    assert first == "done"  # in flight: finishes
    assert all(isinstance(r, StopRequested) for r in rest)


def test_errors_and_retries_are_counted_once_per_attempt() -> None:
    tracker = PerformanceTracker()
    lane = _lane(1, attempts=3)
    tries = 0

    async def attempt() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ServerError("500")
        return "ok"

    assert asyncio.run(lane("c", attempt, tracker=tracker)) == "ok"
    assert tracker.stats()["errors"] == {"server": 2} and tracker.stats()["retries"] == 2


@pytest.mark.parametrize("rate", [0.0, 1.5])
def test_breaker_settings_out_of_range_are_refused(rate: float) -> None:
    from yttl.config import load_settings
    from yttl.errors import ConfigError

    with pytest.raises(ConfigError, match="breaker-failure-rate"):
        load_settings({"breaker_failure_rate": rate}, environ={})


def _target_lane(
    options: BreakerOptions,
    *,
    attempts: int = 3,
    target: str = "http://127.0.0.1:9/v1",
    concurrent: int = 4,
) -> Lane:
    return Lane(
        "p",
        policy=RetryPolicy(max_attempts=attempts, base_delay=0.01),
        admission=LocalAdmission(LaneSpec("p", concurrent, breaker=options, target=target)),
    )


class _Endpoint:
    """An endpoint the test takes down and brings back (or that comes back at its Nth
    probe): the outage is counted in events, not timed."""

    def __init__(self, breaker: CircuitBreaker | None = None, up_at_probe: int = 0) -> None:
        self.down = False
        self.breaker, self.up_at_probe = breaker, up_at_probe
        self.sent_while_down = 0

    async def __call__(self) -> str:
        await asyncio.sleep(0)  # the answer comes on a later turn of the loop
        back = self.breaker is not None and self.breaker.probes >= self.up_at_probe
        if self.down and not back:
            self.sent_while_down += 1
            raise ServerError("p: server error (HTTP 503)", status=503)
        return "ok"


def test_probing_goes_on_past_the_deadline_and_a_later_recovery_closes_the_breaker() -> None:
    """Down longer than the deadline: waiting calls fail then, but the breaker keeps
    probing, so calls made after the endpoint is back go through (a long-lived process
    is never left with a circuit that cannot close)."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.05, deadline=0.4)
    lane = _target_lane(options, attempts=2)
    endpoint = _Endpoint()

    async def main() -> tuple[list[BaseException | str], list[BaseException | str]]:
        # it works first (else it is no outage but a provider that never worked: given up)
        assert await lane("c", endpoint) == "ok"
        endpoint.down = True
        during = await asyncio.gather(
            *(lane("c", endpoint) for _ in range(8)), return_exceptions=True
        )
        endpoint.down = False  # back, after the deadline
        await asyncio.sleep(options.probe_interval)  # a probe is due (or overdue)
        after = await asyncio.gather(
            *(lane("c", endpoint) for _ in range(4)), return_exceptions=True
        )
        return list(during), list(after)

    during, after = asyncio.run(main())
    assert any(isinstance(r, CircuitOpenError) for r in during)  # failed at the deadline
    assert after == ["ok"] * 4, after
    assert lane.breaker is not None and lane.breaker.state == "closed"


def test_an_outage_within_the_deadline_costs_only_the_wait() -> None:
    """Down until the sixth probe, a 4 s deadline, probes from 0.1 s: with the pause
    between probes doubling without a cap (0.1, 0.2, 0.4, 0.8, 1.6, 3.2 s) the sixth
    would come at 6.3 s, after the deadline, and every waiting call would fail; capped at
    a quarter of the deadline it comes at 3.5 s and every call succeeds."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.1, deadline=4.0)
    lane = _target_lane(options, attempts=3)
    assert lane.breaker is not None
    endpoint = _Endpoint(lane.breaker, up_at_probe=6)
    endpoint.down = True

    async def main() -> list[str]:
        return list(await asyncio.gather(*(lane("c", endpoint) for _ in range(12))))

    assert asyncio.run(main()) == ["ok"] * 12
    assert lane.breaker.trips == 1 and lane.breaker.probes == 6
    assert endpoint.sent_while_down <= 4 + 4 + 5  # in flight, retries, probes


def test_a_provider_that_never_answered_fails_fast_naming_its_url() -> None:
    options = BreakerOptions(cooldown=5.0, deadline=60.0)  # the defaults' long waits
    lane = _target_lane(options, attempts=3, target="http://127.0.0.1:9/v1")
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        raise NetworkError("p: cannot connect (Connection refused)", unreached=True)

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(24)), return_exceptions=True)
        )

    started = time.monotonic()
    results = asyncio.run(main())
    took = time.monotonic() - started
    assert took < 10, took  # not the 60 s deadline
    unreachable = [r for r in results if isinstance(r, ProviderUnreachableError)]
    assert unreachable and "http://127.0.0.1:9/v1" in unreachable[0].message
    assert all(isinstance(r, NetworkError) for r in results)
    assert sent <= 4 + 4 + 1  # the first calls, their retries, one probe


def test_a_provider_that_answered_once_is_waited_for_not_given_up() -> None:
    """The fast verdict is only for an endpoint never seen: one that worked and then went
    away is an outage, and its callers wait for the probe until the deadline."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.05, deadline=0.5)
    lane = _target_lane(options, attempts=2)
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            return "ok"
        raise NetworkError("p: cannot connect", unreached=True)

    async def main() -> list[BaseException | str]:
        first = await lane("c", attempt)
        rest = await asyncio.gather(
            *(lane("c", attempt) for _ in range(10)), return_exceptions=True
        )
        return [first, *rest]

    results = asyncio.run(main())
    assert results[0] == "ok"
    assert not any(isinstance(r, ProviderUnreachableError) for r in results)
    assert any(isinstance(r, CircuitOpenError) for r in results)


def test_a_stop_ends_a_long_back_off_at_once() -> None:
    """A Retry-After of a minute must not hold the first Ctrl-C."""
    stop = asyncio.Event()

    async def main() -> BaseException | str:
        lane = Lane("p", policy=RetryPolicy(max_attempts=3, max_delay=60.0), stop=stop)

        async def attempt() -> str:
            raise RateLimitError("429", retry_after=60.0)

        asyncio.get_running_loop().call_later(0.2, stop.set)
        try:
            return await lane("c", attempt)
        except ProviderError as exc:
            return exc

    started = time.monotonic()
    result = asyncio.run(main())
    assert time.monotonic() - started < 5
    assert isinstance(result, RateLimitError | StopRequested)


def test_attempts_that_fail_while_the_endpoint_is_down_are_waited_out_not_spent() -> None:
    """Answers, then is down until its third probe, then answers again; two tries a call.
    A call's first try fails before the breaker has made up its mind, its second is one
    of the probes that fail while it is down: that probe is waiting for the endpoint, not
    a try, so every call succeeds once the endpoint is back, each answered once. (The
    outage is counted in probes, not timed.)"""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.05, deadline=30.0)
    lane = _target_lane(options, attempts=2)
    assert lane.breaker is not None
    breaker = lane.breaker
    requests = 0
    answered: list[int] = []

    def attempt_for(number: int) -> Callable[[], Awaitable[str]]:
        async def attempt() -> str:
            nonlocal requests
            requests += 1
            await asyncio.sleep(0)  # the answer comes on a later turn of the loop
            if requests > 2 and breaker.probes < 3:
                raise ServerError("p: server error (HTTP 503)", status=503)
            answered.append(number)
            return "ok"

        return attempt

    async def main() -> list[BaseException | str]:
        first = [await lane("c", attempt_for(n)) for n in range(2)]  # it works
        calls = (lane("c", attempt_for(n)) for n in range(2, 14))
        rest = await asyncio.gather(*calls, return_exceptions=True)
        return [*first, *rest]

    results = asyncio.run(main())
    assert results == ["ok"] * 14, [r for r in results if r != "ok"][:2]
    assert sorted(answered) == list(range(14))  # each call answered once
    assert breaker.trips == 1 and breaker.probes == 3


def test_a_provider_that_answers_only_errors_is_given_up_after_a_few_probes() -> None:
    """Never one success, every call a 503: not an outage to wait out for the deadline,
    but a few seconds of probes (a server loading its model gets them), then every caller
    fails with the URL and the status."""
    options = BreakerOptions(cooldown=5.0, deadline=60.0, cold_cooldown=0.1, cold_deadline=0.5)
    lane = _target_lane(options, attempts=3, target="http://127.0.0.1:9/v1")
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        await asyncio.sleep(0.01)
        raise ServerError("p: server error (HTTP 503)", status=503)

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(16)), return_exceptions=True)
        )

    started = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - started < 5  # not the 60 s deadline
    unreachable = [r for r in results if isinstance(r, ProviderUnreachableError)]
    assert unreachable, results[:2]
    assert "http://127.0.0.1:9/v1" in unreachable[0].message
    assert "HTTP 503" in unreachable[0].message
    assert lane.breaker is not None and lane.breaker.probes >= 2  # not given up at once
    assert sent <= 16 * 3 + 8


LOADING = "p: the server is starting: it is loading the model (HTTP 503)"


def test_a_provider_loading_its_model_is_waited_for_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """llama.cpp's 503 "Loading model" for the first 40 requests (counted, not timed),
    16 calls at once, the defaults' long cooldown: not given up after a few probes as a
    provider that answers only errors would be, but probed until it is ready, said once,
    and then every call goes through; a wait is no trip and costs no try."""
    options = BreakerOptions(cooldown=0.05, deadline=60.0, cold_deadline=0.5)
    lane = _target_lane(options, attempts=3, concurrent=16)
    requests = 0

    async def attempt() -> str:
        nonlocal requests
        requests += 1
        if requests <= 40:
            raise ProviderStartingError(LOADING)
        return "ok"

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(16)), return_exceptions=True)
        )

    with caplog.at_level(logging.WARNING, logger="yttl"):
        assert asyncio.run(main()) == ["ok"] * 16
    said = [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()]
    assert said == [
        "waiting for p at http://127.0.0.1:9/v1: it says it is loading the model (up to 60 s)"
    ], said
    assert lane.breaker is not None and lane.breaker.state == "closed"
    assert lane.breaker.trips == 0 and lane.breaker.warmups == 1
    assert requests == 40 + 16  # each call answered once; the waits were probes


def test_a_provider_still_loading_at_the_deadline_fails_naming_its_url() -> None:
    options = BreakerOptions(cooldown=0.05, deadline=0.5)
    lane = _target_lane(options, attempts=3)

    async def attempt() -> str:
        raise ProviderStartingError(LOADING)

    async def main() -> list[BaseException | str]:
        return list(
            await asyncio.gather(*(lane("c", attempt) for _ in range(6)), return_exceptions=True)
        )

    results = asyncio.run(main())
    assert all(isinstance(r, ProviderUnreachableError) for r in results), results
    message = str(results[0])
    assert "http://127.0.0.1:9/v1" in message and "still starting" in message


def test_a_429_holds_the_whole_lane_for_its_retry_after() -> None:
    """One call is told to come back in 0.4 s: the calls that want to start meanwhile
    wait too, instead of each earning its own 429 (a lower bound on waits, which a
    loaded machine only lengthens)."""
    lane = _lane(4, attempts=3)
    refused = asyncio.Event()
    sent: list[tuple[str, float]] = []
    told_at: list[float] = []

    async def first() -> str:
        sent.append(("first", time.monotonic()))
        if not told_at:
            told_at.append(time.monotonic())
            refused.set()
            raise RateLimitError("p: rate limited (HTTP 429)", retry_after=0.4)
        return "ok"

    async def other() -> str:
        sent.append(("other", time.monotonic()))
        return "ok"

    async def later() -> str:
        await refused.wait()
        return await lane("other", other)

    async def main() -> list[str]:
        return list(await asyncio.gather(lane("first", first), *(later() for _ in range(3))))

    assert asyncio.run(main()) == ["ok"] * 4
    others = [at for who, at in sent if who == "other"]
    assert len(others) == 3 and min(others) - told_at[0] >= 0.39


def test_a_429_neither_opens_nor_closes_the_breaker() -> None:
    async def main() -> None:
        breaker = CircuitBreaker("p", BreakerOptions(min_calls=2, window=4, cooldown=0.01))
        for _ in range(10):  # many 429s: a live endpoint asking for patience
            breaker.record("neutral")
        assert breaker.state == "closed" and breaker.trips == 0
        breaker.record("failure")
        breaker.record("failure")
        assert breaker.state == "open"
        assert await breaker.permit() is True  # the probe...
        breaker.record("neutral", probe=True)  # ... is told 429: no verdict
        assert breaker.state == "open"
        assert await breaker.permit() is True  # the next caller probes
        breaker.record("success", probe=True)
        assert breaker.state == "closed"

    asyncio.run(main())
    from yttl.resilience import health_outcome

    assert health_outcome(RateLimitError("p: rate limited (HTTP 429)")) == "neutral"


def test_the_breaker_moves_only_as_its_table_says() -> None:
    from yttl.breaker import TRANSITIONS, Event, State

    async def main() -> list[str]:
        breaker = CircuitBreaker("p", BreakerOptions(cooldown=0.01), target="http://x/v1")
        seen = [breaker.state.value]
        breaker.record("warming", status=503)
        seen.append(breaker.state.value)
        assert await breaker.permit() is True
        seen.append(breaker.state.value)
        breaker.record("warming", probe=True, status=503)
        seen.append(breaker.state.value)
        assert await breaker.permit() is True
        breaker.record("success", probe=True)
        seen.append(breaker.state.value)
        return seen

    async def restarted() -> CircuitBreaker:  # down, then its probe says it is loading
        breaker = CircuitBreaker("p", BreakerOptions(min_calls=2, window=2, cooldown=0.01))
        breaker.record("failure")
        breaker.record("failure")
        assert await breaker.permit() is True
        breaker.record("warming", probe=True, status=503)
        return breaker

    assert asyncio.run(main()) == ["closed", "warming", "half-open", "warming", "closed"]
    again = asyncio.run(restarted())
    assert again.state == "warming" and again.warmups == 1 and again.trips == 1
    assert TRANSITIONS[State.CLOSED, Event.WARMS] is State.WARMING
    assert (State.CLOSED, Event.ANSWERED) not in TRANSITIONS  # closed stays closed


def test_a_provider_alternating_loading_and_errors_is_given_up_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that answers 503 "Loading model" and 500 in turn (issue 29 attack): each
    "loading" after a failed probe is the same wait, not a new one, so the calls fail at
    the deadline counted from the first "loading" and the wait is said once (before, each
    "loading" began a new wait: the run never ended and said so every other probe)."""
    options = BreakerOptions(cooldown=0.05, deadline=1.0, cold_deadline=0.2)
    lane = _target_lane(options, attempts=3, concurrent=4)
    requests = 0

    async def attempt() -> str:
        nonlocal requests
        requests += 1
        if requests % 2:
            raise ProviderStartingError(LOADING)
        raise ServerError("p: server error (HTTP 500)", status=500)

    async def main() -> list[BaseException | str]:
        calls = asyncio.gather(*(lane("c", attempt) for _ in range(4)), return_exceptions=True)
        return list(await asyncio.wait_for(calls, 60))  # liveness only: the verdict is below

    with caplog.at_level(logging.WARNING, logger="yttl"):
        results = asyncio.run(main())
    assert all(isinstance(r, ProviderUnreachableError) for r in results), results
    assert lane.breaker is not None and lane.breaker.warmups == 1
    said = [r for r in caplog.records if "waiting for" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]


def test_a_429_asking_to_wait_longer_than_yttl_waits_fails_its_calls_at_once_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 429 with Retry-After: 3600 (a quota gone for the hour): retrying every 60 s six
    times kept a run silent for minutes and still lost every section. Each call is tried
    once, names the wait, and the run says it once."""
    lane = _lane(3, breaker=BreakerOptions())
    requests = 0
    all_sent = asyncio.Event()

    async def attempt() -> str:
        nonlocal requests
        requests += 1
        if requests == 3:
            all_sent.set()
        await all_sent.wait()  # the three are out before the first 429 holds the lane
        raise RateLimitError("p: rate limited (HTTP 429)", retry_after=3600.0)

    async def main() -> list[BaseException | str]:
        calls = asyncio.gather(*(lane("c", attempt) for _ in range(3)), return_exceptions=True)
        return list(await asyncio.wait_for(calls, 60))  # liveness only: the verdict is below

    with caplog.at_level(logging.WARNING, logger="yttl"):
        results = asyncio.run(main())
    assert all(isinstance(r, RateLimitError) for r in results), results
    assert all("3600 s" in str(r) for r in results), results
    assert requests == 3
    said = [r.getMessage() for r in caplog.records if "asks to wait" in r.getMessage()]
    assert len(said) == 1, said


def test_a_429_asking_for_longer_than_yttl_waits_does_not_hold_the_lane() -> None:
    """Its calls are not retried, so holding the lane for it (60 s) only delayed the
    calls queued behind it before they failed the same way: one slot, three calls, each
    answered at once."""
    lane = _lane(1, breaker=BreakerOptions())
    requests = 0

    async def attempt() -> str:
        nonlocal requests
        requests += 1
        raise RateLimitError("p: rate limited (HTTP 429)", retry_after=3600.0)

    async def main() -> list[BaseException | str]:
        calls = asyncio.gather(*(lane("c", attempt) for _ in range(3)), return_exceptions=True)
        return list(await asyncio.wait_for(calls, 40))  # liveness: held, it takes 120 s

    results = asyncio.run(main())
    assert all(isinstance(r, RateLimitError) for r in results), results
    assert requests == 3
