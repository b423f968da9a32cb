"""Retries, breaker, pacing: unit tests with injected clocks, then a faulty real server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.faults import Faults
from tests.support.server import LoopbackServer
from tests.support.videos import serve_video, two_hour_video
from yttl.errors import (
    AuthError,
    NetworkError,
    RateLimitError,
    ServerError,
)
from yttl.llm.base import Completion
from yttl.perf import PerformanceTracker
from yttl.resilience import Pacer, RetryPolicy
from yttl.scheduler import Lane


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _manager(clock: _Clock, **policy: object) -> tuple[object, PerformanceTracker]:
    tracker = PerformanceTracker()
    defaults: dict[str, object] = {"max_attempts": 4, "base_delay": 1.0, "timeout": None}
    defaults.update(policy)
    lane = Lane(
        "p",
        max_concurrent=4,
        policy=RetryPolicy(**defaults),  # type: ignore[arg-type]
        sleep=clock.sleep,
    )

    async def call(label: str, attempt: object) -> Completion:
        return await lane(label, attempt, tracker=tracker)  # type: ignore[arg-type]

    return call, tracker


def _flaky(*errors: Exception) -> tuple[list[int], object]:
    calls = [0]

    async def attempt() -> Completion:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return Completion("ok")

    return calls, attempt


def test_transient_errors_are_retried_with_growing_jittered_backoff() -> None:
    clock = _Clock()
    manager, tracker = _manager(clock)
    calls, attempt = _flaky(ServerError("500"), NetworkError("reset"), ServerError("503"))
    assert asyncio.run(manager("s", attempt)).text == "ok"  # type: ignore[arg-type]
    assert calls[0] == 4
    assert len(clock.sleeps) == 3
    caps = [1.0 * 2**i for i in range(1, 4)]  # base * 2^attempt, jitter below the cap
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, caps, strict=True))
    assert tracker.stats()["retries"] == 3
    assert tracker.stats()["errors"] == {"server": 2, "network": 1}


def test_retry_after_is_honoured_and_auth_is_never_retried() -> None:
    clock = _Clock()
    manager, _ = _manager(clock)
    calls, attempt = _flaky(RateLimitError("429", retry_after=7.0))
    asyncio.run(manager("s", attempt))  # type: ignore[arg-type]
    assert clock.sleeps == [7.0] and calls[0] == 2

    calls, attempt = _flaky(AuthError("401"), AuthError("401"))
    with pytest.raises(AuthError) as info:
        asyncio.run(manager("s", attempt))  # type: ignore[arg-type]
    assert calls[0] == 1 and info.value.attempts == 1


def test_attempts_are_limited_and_reported() -> None:
    """Three tries, then as many again from the lane's retry budget (for scattered faults
    of a healthy endpoint), waiting no longer than the last try did; then it gives up."""
    clock = _Clock()
    manager, _ = _manager(clock, max_attempts=3)
    calls, attempt = _flaky(*[ServerError("500")] * 20)
    with pytest.raises(ServerError) as info:
        asyncio.run(manager("s", attempt))  # type: ignore[arg-type]
    assert calls[0] == 3 + 6 and info.value.attempts == 3 + 6
    assert len(clock.sleeps) == 8 and max(clock.sleeps) <= 1.0 * 2**2


def test_each_attempt_gets_a_longer_timeout() -> None:
    manager = Lane(
        "p", max_concurrent=1, policy=RetryPolicy(max_attempts=3, base_delay=0.001, timeout=0.2)
    )
    durations = iter([0.25, 0.25])  # too slow for the first 0.2 s; fine within the next 0.3 s
    seen = []

    async def attempt() -> Completion:
        seen.append(time.perf_counter())
        await asyncio.sleep(next(durations))
        return Completion("late but fine")

    assert asyncio.run(manager("s", attempt)).text == "late but fine"
    assert len(seen) == 2  # the same slow answer timed out once, then fit the longer timeout


def test_pacing_spreads_requests_and_tokens_and_slows_after_429() -> None:
    clock = _Clock()
    pacer = Pacer(requests_per_minute=30, clock=clock, sleep=clock.sleep)

    async def go(n: int, tokens: int = 0) -> None:
        for _ in range(n):
            await pacer.acquire(tokens)

    asyncio.run(go(4))
    assert clock.sleeps == [2.0, 2.0, 2.0]  # 30 a minute: one every 2 s, no burst
    pacer.slow_down()
    clock.sleeps.clear()
    asyncio.run(go(2))
    assert clock.sleeps[-1] == pytest.approx(2.0 / 0.7)

    clock = _Clock()
    pacer = Pacer(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)
    asyncio.run(go(3, tokens=1000))  # 1,000 a request; 100 a second refill; 1,000 bucket
    assert clock.sleeps == [pytest.approx(10.0), pytest.approx(10.0)]


def _fast_retries(*extra: str) -> list[str]:
    return [
        "--retry-base-delay",
        "0.05",
        "--request-timeout",
        "2",
        "--retry-max-attempts",
        "4",
        *extra,
    ]


def _args(server: LoopbackServer, source: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(source),
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
        "-o",
        str(out),
        "-f",
        "json",
        "-f",
        "md",
        "--no-open",
        *extra,
    ]


@pytest.mark.corpus
@pytest.mark.parametrize("share", [0.3])
def test_a_third_of_calls_failing_transiently_still_completes_every_section_once(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str], share: float
) -> None:
    faults = Faults(share)
    server.state.fault = faults
    info = two_hour_video(server, tmp_path)
    result = run_yttl(_args(server, info, tmp_path / "o", *_fast_retries()), clean_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "twohour-12.json").read_text())
    assert [s["status"] for h in doc["hours"] for s in h["sections"]] == ["ok"] * 24
    assert [h["status"] for h in doc["hours"]] == ["ok", "ok"]
    answered = Counter(c.user for c in server.state.successful_calls())
    assert len(answered) == 27 and set(answered.values()) == {1}  # each done exactly once
    assert len(server.state.calls) > 27  # and there were faults to get past
    assert doc["stats"]["retries"] >= len(server.state.calls) - 27 - 2


@pytest.mark.corpus
def test_a_provider_that_dies_opens_the_breaker_and_the_run_ends_fast_and_marked(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    # it worked (so this is an outage, not a wrong URL), then answers only 503s for good
    answered = itertools.count()
    server.state.fault = lambda call: (
        None if next(answered) < 2 else (503, {}, b'{"error": {"message": "down"}}')
    )
    info = two_hour_video(server, tmp_path)
    started = time.monotonic()
    clean_env["YTTL_BREAKER_COOLDOWN"] = "0.5"
    result = run_yttl(
        _args(
            server,
            info,
            tmp_path / "o",
            *_fast_retries(),
            "--breaker-deadline",
            "3",
            "--max-concurrent-llm",
            "1",
        ),
        clean_env,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 3, result.stderr  # two sections kept: partial, not a failure
    doc = json.loads((tmp_path / "o" / "twohour-12.json").read_text())
    statuses = [s["status"] for h in doc["hours"] for s in h["sections"]]
    assert statuses[:2] == ["ok", "ok"] and set(statuses[2:]) == {"failed"}
    categories = Counter(f["category"] for f in doc["failures"])
    assert categories["circuit_open"] > 0 and doc["stats"]["breaker_trips"] >= 1
    # the breaker stopped the hammering: the two good calls, the verdict's window (10)
    # and a probe every ~0.5-0.75 s for 3 s, where retries alone would have made 25 x 4
    assert len(server.state.calls) <= 2 + 10 + 6
    assert "failed" in result.stderr


@pytest.mark.corpus
def test_a_rerun_after_failures_repeats_no_successful_call(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    server.state.fault = lambda call: (500, {}, b"{}") if "his own practice" in call.user else None
    first = run_yttl(_args(server, info, tmp_path / "o", *_fast_retries()), clean_env)
    assert first.returncode == 3
    succeeded = {c.user for c in server.state.successful_calls()}
    server.state.fault = None
    second = run_yttl(_args(server, info, tmp_path / "o", *_fast_retries()), clean_env)
    assert second.returncode == 0, second.stderr
    answered = Counter(c.user for c in server.state.successful_calls())
    assert all(answered[prompt] == 1 for prompt in succeeded)
    doc = json.loads((tmp_path / "o" / "vo4pMVb0R6M.json").read_text())
    assert doc["stats"]["cache_hits"] >= 1 and not doc["failures"]


@pytest.mark.corpus
def test_ctrl_c_writes_what_finished_and_a_rerun_completes_without_repeats(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.latency = 0.4
    info = two_hour_video(server, tmp_path)
    args = [
        sys.executable,
        "-m",
        "yttl",
        *_args(server, info, tmp_path / "o", "--max-concurrent-llm", "2"),
    ]
    process = subprocess.Popen(
        args, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(server.state.successful_calls()) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    doc = json.loads((tmp_path / "o" / "twohour-12.json").read_text())
    statuses = [s["status"] for h in doc["hours"] for s in h["sections"]]
    assert statuses.count("ok") >= 5 and "failed" in statuses

    server.state.latency = 0.0
    rerun = run_yttl(_args(server, info, tmp_path / "o"), clean_env)
    assert rerun.returncode == 0, rerun.stderr
    answered = Counter(c.user for c in server.state.successful_calls())
    assert len(answered) == 27 and set(answered.values()) == {1}


@pytest.mark.corpus
def test_a_context_length_refusal_falls_back_to_smaller_parts(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    too_long = json.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 1024 tokens",
                "code": "context_length_exceeded",
            }
        }
    ).encode()
    server.state.fault = lambda call: (400, {}, too_long) if len(call.user) > 3000 else None
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    result = run_yttl(_args(server, info, tmp_path / "o", *_fast_retries()), clean_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "vo4pMVb0R6M.json").read_text())
    assert all(s["status"] == "ok" for s in doc["hours"][0]["sections"])
    assert max(len(c.user) for c in server.state.successful_calls()) <= 3000


@pytest.mark.corpus
def test_a_fallback_provider_takes_over_from_a_failing_one(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.fault = lambda call: (500, {}, b"{}")
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    with LoopbackServer() as backup:
        clean_env["BACKUP_API_KEY"] = "sk-backup-0123456789"
        args = _args(
            server,
            info,
            tmp_path / "o",
            *_fast_retries(),
            "-aop",
            "backup",
            "--backup-base-url",
            backup.openai_base_url,
            "--backup-model",
            "b1",
            "--fallback-provider",
            "backup",
        )
        result = run_yttl(args, clean_env)
        assert result.returncode == 0, result.stderr
        assert len(backup.state.calls) == 3 and {c.model for c in backup.state.calls} == {"b1"}
    doc = json.loads((tmp_path / "o" / "vo4pMVb0R6M.json").read_text())
    assert all(s["status"] == "ok" for s in doc["hours"][0]["sections"])


@pytest.mark.corpus
def test_requests_are_paced_under_the_budget(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = two_hour_video(server, tmp_path, parts=2)  # 4 sections and an hour: 5 calls
    result = run_yttl(
        _args(
            server,
            info,
            tmp_path / "o",
            "--requests-per-minute",
            "60",
            "--max-concurrent-llm",
            "8",
        ),
        clean_env,
    )
    assert result.returncode == 0, result.stderr
    starts = sorted(c.start for c in server.state.calls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # one a second, though 8 may be in flight (unpaced, they all arrive at once); the
    # first call pays for opening the connection, so its gap is left out. The span of the
    # last four (3 s) is judged with a second to spare: at 0.2 s apart, one arrival
    # delayed by a loaded machine took the span under its bound (0.495 s < 0.5 s).
    assert len(starts) == 5 and sum(gaps[1:]) >= 2.0, gaps


@pytest.mark.corpus
def test_an_unreachable_caption_server_is_retried_then_reported(
    tmp_path: Path, clean_env: dict[str, str], server: LoopbackServer
) -> None:
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    doc = json.loads(info.read_text())
    for formats in doc["subtitles"].values():
        for fmt in formats:
            fmt["url"] = "http://127.0.0.1:9/nothing.json3"
    doc["automatic_captions"] = {}
    info.write_text(json.dumps(doc))
    clean_env["YTTL_RETRY_BASE_DELAY"] = "0.01"
    result = run_yttl(_args(server, info, tmp_path / "o", "-lwm", os.devnull), clean_env)
    assert "falling back to transcription" in result.stderr
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
