"""A provider that goes away: a dead URL ends the run in seconds, an outage costs only the
wait. Real runs of yttl against the loopback server, on videos the tests make."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import run_yttl
from tests.support.faults import FastFaults, Loading
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
    """A dead or wrong base URL is no outage to wait out: the run ends within seconds with
    one line that names the URL. The deadline is set to ten minutes, so that a run that
    waited it out is told from one that did not by a margin no loaded machine closes
    (under load, starting Python alone has taken more than the 15 s once allowed)."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    started = time.monotonic()
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            dead,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
            "--breaker-deadline",
            "600",
        ],
        clean_env,
        timeout=240,
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < 120, took  # not the 600 s deadline
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
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
            "--max-concurrent-llm",
            "4",
            "--retry-base-delay",
            "0.2",
            "--breaker-deadline",
            "30",
        ],
        clean_env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "synth.json").read_text())
    assert all(s["status"] == "ok" for h in doc["hours"] for s in h["sections"])
    assert len(down) <= 4 + 10 + 8, len(down)  # in flight, the verdict's window, probes
    assert outage and time.monotonic() - outage[0] < 60  # no more than the wait
    assert doc["stats"]["breaker_trips"] >= 1


SERVER_ERROR: Fault = (
    503,
    {"Content-Type": "application/json"},
    json.dumps({"error": {"message": "upstream is broken"}}).encode(),
)


def test_a_provider_that_answers_only_errors_from_the_start_is_given_up_naming_url_and_status(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Every call a 503, never one success: an endpoint that answers, but only errors, is
    dead to this run (a wrong URL behind a proxy, a broken server). It is probed for a few
    seconds (a server still loading its model gets that long), not waited out for the
    breaker's deadline (ten minutes here, so that waiting it out is told from not by a
    margin no loaded machine closes), and the one error line names the URL and the status."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    server.state.latency = 0.2
    server.state.fault = lambda call: SERVER_ERROR
    started = time.monotonic()
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
            "--max-concurrent-llm",
            "16",
            "--breaker-deadline",
            "600",
        ],
        clean_env,
        timeout=240,
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("yttl: error")]
    assert len(errors) == 1, result.stderr
    assert server.openai_base_url in errors[0] and "503" in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    # the first calls, their retries and a few probes, not a minute of them
    assert len(server.state.calls) <= 16 * 3 + 4, len(server.state.calls)
    assert took < 120, took  # not the 600 s deadline


def test_an_outage_after_good_calls_loses_no_section_and_answers_each_call_once(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Eight good calls, then every connection dropped for 8 s, 16 calls in flight: a call
    that fails while the breaker holds the endpoint for down (its probes included) waits
    for it to come back instead of spending its tries, so no section fails, and no prompt
    is answered twice. Retries back off from 0.2 s, so that the calls in flight would spend
    all their tries within the 8 s, as they do within the 40 s of the issue's outage."""
    from collections import Counter

    info = synthetic_video(server, tmp_path, seconds=7200)
    server.state.latency = 0.2
    outage: list[float] = []

    def fault(call: ChatCall) -> Fault | None:
        if call.index < 8:
            return None
        now = time.monotonic()
        if not outage:
            outage.append(now)
        return DROP if now - outage[0] < 8.0 else None

    server.state.fault = fault
    clean_env["YTTL_BREAKER_COOLDOWN"] = "0.5"
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
            "--max-concurrent-llm",
            "16",
            "--breaker-deadline",
            "30",
            "--retry-base-delay",
            "0.2",
        ],
        clean_env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "synth.json").read_text())
    sections = [s for h in doc["hours"] for s in h["sections"]]
    assert [s["status"] for s in sections] == ["ok"] * len(sections) and len(sections) == 24
    answered = Counter(c.user for c in server.state.successful_calls())
    assert set(answered.values()) == {1}, answered.most_common(2)
    assert len(answered) == 24 + 2 + 1  # sections, hours, the overview


def _said_waiting(stderr: str, url: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if f"waiting for openai at {url}: it says it is loading the model" in line
    ]


def test_a_server_loading_its_model_is_waited_for_said_once_and_the_run_goes_on(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """llama.cpp's server answers 503 "Loading model" while it loads: started together
    with yttl, it is no provider that answers only errors (given up within seconds) but
    one that is starting. The run waits for it, says so once, and goes on: every section
    summarized. The load lasts its first 31 requests (16 in flight, then 15 probes),
    counted, not timed; a provider given up after a few probes never sees it ready."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    loading = Loading(calls=31, latency=0.05)
    server.state.latency, server.state.fault = loading.latency, loading.fault
    clean_env["YTTL_BREAKER_COOLDOWN"] = "0.2"  # probes of a starting server: this often
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
        ],
        clean_env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(_said_waiting(result.stderr, server.openai_base_url)) == 1, result.stderr
    doc = json.loads((tmp_path / "o" / "synth.json").read_text())
    sections = [s for h in doc["hours"] for s in h["sections"]]
    assert [s["status"] for s in sections] == ["ok"] * 24
    assert doc["stats"]["breaker_trips"] == 0 and loading.loading_answers == 31


def test_a_batch_waits_for_a_loading_server_instead_of_stopping(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The same in a batch: the 503 "Loading model" stops no video; the wait is said once
    for the batch, and every video is summarized."""
    infos = [synthetic_video(server, tmp_path, name, seconds=3600) for name in ("a", "b")]
    loading = Loading(calls=31, latency=0.05)
    server.state.latency, server.state.fault = loading.latency, loading.fault
    clean_env["YTTL_BREAKER_COOLDOWN"] = "0.2"
    result = run_yttl(
        [
            *map(str, infos),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
        ],
        clean_env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(_said_waiting(result.stderr, server.openai_base_url)) == 1, result.stderr
    for name in ("a", "b"):
        doc = json.loads((tmp_path / "o" / f"{name}.json").read_text())
        assert all(s["status"] == "ok" for h in doc["hours"] for s in h["sections"]), name
    assert loading.loading_answers == 31


def test_scattered_fast_faults_lose_no_section_and_never_open_the_breaker(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A third of the prompts fail at once, three times each (every try the defaults
    give a call), while the successes wait until 16 of them are in flight together (the
    provider's default concurrency): the fast failures crowd the first answers. The
    endpoint is judged by calls, so the breaker stays closed; the calls that used up
    their tries on a healthy endpoint take more from the lane's retry budget, so no
    section is lost."""
    info = synthetic_video(server, tmp_path, seconds=7200)
    faults = FastFaults(0.3, failures=3, slots=16, latency=0.1)
    server.state.latency, server.state.fault = faults.latency, faults.fault
    result = run_yttl(
        [
            str(info),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
            "--retry-base-delay",
            "0.1",
        ],
        clean_env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "synth.json").read_text())
    sections = [s for h in doc["hours"] for s in h["sections"]]
    assert [s["status"] for s in sections] == ["ok"] * 24
    assert doc["stats"]["breaker_trips"] == 0
    assert set(faults.failed.values()) == {3} and len(faults.failed) >= 4, faults.failed
