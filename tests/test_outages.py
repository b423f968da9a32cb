"""A provider that goes away: a dead URL ends the run in seconds, an outage costs only the
wait. Real runs of yttl against the loopback server, on videos the tests make."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_yttl
from tests.support.server import DROP, ChatCall, Fault, LoopbackServer
from tests.support.synthetic import synthetic_video


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


def test_a_provider_down_from_the_start_ends_the_run_within_seconds_naming_its_url(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A dead or wrong base URL is no outage to wait out (60 s by default): the run ends
    within seconds with one line that names the URL."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    started = time.monotonic()
    result = run_yttl([str(info), "-lp", "openai", "-ou", dead, "-o", str(tmp_path / "o"),
                       "-f", "json", "--no-open"], clean_env, timeout=90)  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < 15, took
    errors = [line for line in result.stderr.splitlines() if line.startswith("yttl: error")]
    assert len(errors) == 1 and dead in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_an_outage_of_a_provider_that_was_working_costs_the_run_only_the_wait(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Answers, then drops every connection for 20 s, then answers again: every section is
    summarized, and while it was down the breaker held the calls back to a few probes.
    With the pause between probes doubling uncapped (0.5, 1, 2, 4, 8, 16 s: probes at
    0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s after it opened) the recovery, about 19 s after, is
    first seen past the 30 s deadline and every waiting call fails; capped at a quarter
    of the deadline, the probe at 23 s sees it."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    server.state.latency = 0.2
    outage: list[float] = []
    down: list[float] = []

    def fault(call: ChatCall) -> Fault | None:
        if call.index < 4:
            return None
        now = time.monotonic()
        if not outage:
            outage.append(now)
        if now - outage[0] < 20.0:
            down.append(now)
            return DROP
        return None

    server.state.fault = fault
    clean_env["YTTL_BREAKER_COOLDOWN"] = "0.5"
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(tmp_path / "o"), "-f", "json", "--no-open",
                       "--max-concurrent-llm", "4", "--retry-base-delay", "0.2",
                       "--breaker-deadline", "30"], clean_env, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "synth.json").read_text())
    assert all(s["status"] == "ok" for h in doc["hours"] for s in h["sections"])
    assert len(down) <= 4 + 10 + 8, len(down)  # in flight, the verdict's window, probes
    assert outage and time.monotonic() - outage[0] < 60  # no more than the wait
    assert doc["stats"]["breaker_trips"] >= 1
