"""The run's scheduler: slots before timeouts, a breaker that judges health, shared lanes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import pytest

from yttl.errors import (
    CircuitOpenError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    ProviderUnreachableError,
    RateLimitError,
    RequestRefusedError,
    ServerError,
    StopRequested,
)
from yttl.perf import PerformanceTracker
from yttl.resilience import BreakerOptions, CircuitBreaker, RetryPolicy
from yttl.scheduler import Lane, LaneSpec, LocalAdmission, Scheduler


def _lane(max_concurrent: int = 2, *, timeout: float | None = None, attempts: int = 3,
          breaker: BreakerOptions | None = None) -> Lane:  # fmt: skip
    return Lane(
        "p", policy=RetryPolicy(max_attempts=attempts, base_delay=0.01, timeout=timeout),
        admission=LocalAdmission(LaneSpec("p", max_concurrent, breaker=breaker)),
    )  # fmt: skip


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


def test_scattered_transient_faults_never_open_the_breaker() -> None:
    """About 30 % of attempts fail at random (up to twice for one call), 16 at a time, 20
    runs in a row: never a trip, never a lost call."""
    rng = random.Random(7)
    admissions: list[LocalAdmission] = []

    async def one(lane: Lane) -> str:
        failures = 0 if rng.random() < 0.65 else 1 if rng.random() < 0.7 else 2

        async def attempt() -> str:
            nonlocal failures
            await asyncio.sleep(rng.random() * 0.002)
            if failures:
                failures -= 1
                raise ServerError("500")
            return "ok"

        return await lane("c", attempt)

    async def run() -> list[str]:
        admissions.append(LocalAdmission(LaneSpec("p", 16)))
        lane = Lane("p", admission=admissions[-1],
                    policy=RetryPolicy(max_attempts=4, base_delay=0.001))  # fmt: skip
        return list(await asyncio.gather(*(one(lane) for _ in range(30))))

    for _ in range(20):
        assert asyncio.run(run()) == ["ok"] * 30
    assert all(a.breaker is not None and a.breaker.trips == 0 for a in admissions)
    assert sum(a.sent for a in admissions) > 20 * 30  # there were failures to get past


def test_a_dead_endpoint_opens_within_a_few_calls_and_fails_waiters_at_the_deadline() -> None:
    options = BreakerOptions(window=10, min_calls=5, failure_rate=0.7, cooldown=0.1, deadline=0.5)
    lane = _lane(4, breaker=options, attempts=5)
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        raise NetworkError("connection refused")

    async def main() -> list[BaseException | str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(20)),
                                         return_exceptions=True))  # fmt: skip

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
    down_until = time.monotonic() + 0.15
    sent_while_open = 0

    async def attempt() -> str:
        nonlocal sent_while_open
        if time.monotonic() < down_until:
            raise ServerError("503")
        assert lane.breaker is not None
        if lane.breaker.state != "closed":
            sent_while_open += 1
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(12))))

    assert asyncio.run(main()) == ["ok"] * 12  # nobody failed with "circuit open"
    assert lane.breaker is not None and lane.breaker.trips == 1
    assert lane.breaker.state == "closed" and sent_while_open == 1  # only the probe


def test_a_refused_request_never_counts_against_the_endpoint_and_is_never_retried() -> None:
    lane = _lane(4, breaker=BreakerOptions(window=5, min_calls=3, failure_rate=0.5), attempts=3)
    tries = 0

    async def attempt() -> str:
        nonlocal tries
        tries += 1
        raise RequestRefusedError("400: bad request")

    async def main() -> list[BaseException | str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(10)),
                                         return_exceptions=True))  # fmt: skip

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
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(10)),
                                         return_exceptions=True))  # fmt: skip

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


def _target_lane(options: BreakerOptions, *, attempts: int = 3,
                 target: str = "http://127.0.0.1:9/v1") -> Lane:  # fmt: skip
    return Lane(
        "p", policy=RetryPolicy(max_attempts=attempts, base_delay=0.01),
        admission=LocalAdmission(LaneSpec("p", 4, breaker=options, target=target)),
    )  # fmt: skip


def _outage(
    lane: Lane, down: tuple[float, float], sent: list[float]
) -> Callable[[], Awaitable[str]]:
    """An endpoint that is down (5xx) between ``down`` seconds from now."""
    start = time.monotonic()

    async def attempt() -> str:
        now = time.monotonic() - start
        sent.append(now)
        if down[0] <= now < down[1]:
            raise ServerError("503")
        return "ok"

    return attempt


def test_probing_goes_on_past_the_deadline_and_a_later_recovery_closes_the_breaker() -> None:
    """Down longer than the deadline: waiting calls fail then, but the breaker keeps
    probing, so calls made after the endpoint is back go through (a long-lived process
    is never left with a circuit that cannot close)."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.05, deadline=0.4)
    lane = _target_lane(options, attempts=2)
    sent: list[float] = []
    # it works first (else it is no outage but a provider that never worked: given up)
    attempt = _outage(lane, (0.02, 0.7), sent)

    async def main() -> tuple[list[BaseException | str], list[BaseException | str]]:
        assert await lane("c", attempt) == "ok"
        await asyncio.sleep(0.03)
        during = await asyncio.gather(*(lane("c", attempt) for _ in range(8)),
                                      return_exceptions=True)  # fmt: skip
        await asyncio.sleep(0.8 - (time.monotonic() - started))  # back up at 0.7 s
        await asyncio.sleep(options.probe_interval)  # a probe is due
        after = await asyncio.gather(*(lane("c", attempt) for _ in range(4)),
                                     return_exceptions=True)  # fmt: skip
        return list(during), list(after)

    started = time.monotonic()
    during, after = asyncio.run(main())
    assert any(isinstance(r, CircuitOpenError) for r in during)  # failed at the deadline
    assert after == ["ok"] * 4, after
    assert lane.breaker is not None and lane.breaker.state == "closed"


def test_an_outage_within_the_deadline_costs_only_the_wait() -> None:
    """Down for 0.75 s of a 1 s deadline: with the pause between probes doubling without a
    cap (0.1, 0.2, 0.4, 0.8 s) the next probe would come after the deadline and every
    waiting call would fail; capped, a probe sees the recovery and every call succeeds."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.1, deadline=1.0)
    lane = _target_lane(options, attempts=3)
    sent: list[float] = []
    attempt = _outage(lane, (0.0, 0.75), sent)

    async def main() -> list[str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(12))))

    assert asyncio.run(main()) == ["ok"] * 12
    assert lane.breaker is not None and lane.breaker.trips == 1
    assert len([t for t in sent if t < 0.75]) <= 4 + 4 + 5  # in flight, retries, probes


def test_a_provider_that_never_answered_fails_fast_naming_its_url() -> None:
    options = BreakerOptions(cooldown=5.0, deadline=60.0)  # the defaults' long waits
    lane = _target_lane(options, attempts=3, target="http://127.0.0.1:9/v1")
    sent = 0

    async def attempt() -> str:
        nonlocal sent
        sent += 1
        raise NetworkError("p: cannot connect (Connection refused)", unreached=True)

    async def main() -> list[BaseException | str]:
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(24)),
                                         return_exceptions=True))  # fmt: skip

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
        rest = await asyncio.gather(*(lane("c", attempt) for _ in range(10)),
                                    return_exceptions=True)  # fmt: skip
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
    """Answers, then is down for half a second, then answers again; two tries a call. A
    call's first try fails before the breaker has made up its mind, its second is one of
    the probes that fail while it is down: that probe is waiting for the endpoint, not a
    try, so every call succeeds once the endpoint is back, each answered once."""
    options = BreakerOptions(window=10, min_calls=4, cooldown=0.05, deadline=5.0)
    lane = _target_lane(options, attempts=2)
    start = time.monotonic()
    answered: list[int] = []

    def attempt_for(number: int) -> Callable[[], Awaitable[str]]:
        async def attempt() -> str:
            await asyncio.sleep(0.02)
            if 0.05 <= time.monotonic() - start < 0.6:
                raise ServerError("p: server error (HTTP 503)", status=503)
            answered.append(number)
            return "ok"

        return attempt

    async def main() -> list[BaseException | str]:
        first = [await lane("c", attempt_for(n)) for n in range(2)]  # it works
        await asyncio.sleep(max(0.0, 0.06 - (time.monotonic() - start)))
        rest = await asyncio.gather(*(lane("c", attempt_for(n)) for n in range(2, 14)),
                                    return_exceptions=True)  # fmt: skip
        return [*first, *rest]

    results = asyncio.run(main())
    assert results == ["ok"] * 14, [r for r in results if r != "ok"][:2]
    assert sorted(answered) == list(range(14))  # each call answered once
    assert lane.breaker is not None and lane.breaker.trips >= 1 and lane.breaker.probes >= 2


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
        return list(await asyncio.gather(*(lane("c", attempt) for _ in range(16)),
                                         return_exceptions=True))  # fmt: skip

    started = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - started < 5  # not the 60 s deadline
    unreachable = [r for r in results if isinstance(r, ProviderUnreachableError)]
    assert unreachable, results[:2]
    assert "http://127.0.0.1:9/v1" in unreachable[0].message
    assert "HTTP 503" in unreachable[0].message
    assert lane.breaker is not None and lane.breaker.probes >= 2  # not given up at once
    assert sent <= 16 * 3 + 8
