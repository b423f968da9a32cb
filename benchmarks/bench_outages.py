"""A provider that goes away, and a batch whose videos fail in every way (issue 18).

1. Outage: a two-hour video (24 sections, two hours, an overview) at 1 s a call, 8 in
   flight; after the first calls the provider drops every connection for 40 s, then
   answers again. Measured: wall time, the calls sent while it was down, the time from
   its return to the end of the run, sections summarized. The same run without the
   outage gives the baseline. ``outage16`` (issue 24): the same after 8 good calls, 16 in
   flight; also counted: prompts answered more than once.
2. Down from the start: a base URL nobody listens on. Measured: time to the error.
   ``errors_from_start`` (issue 24): a server that answers every call with a 503.
2b. ``loading`` (issue 29): a llama.cpp-like server that answers 503 "Loading model" for
   its first 30 s, started together with yttl; the two-hour video at the default
   concurrency, 1.5 s a call. Measured: the time from the model being ready to the end
   of the run, against a run on a ready server (from its first request to its end).
3. A batch of 20 videos in which two cannot be written (a folder where the JSON goes)
   and one raises an unexpected error inside the pipeline (a broken progress observer).
   Measured: outcomes, what the index lists, the exit code.

    python -m benchmarks.bench_outages [--json PATH]
    python -m benchmarks.bench_outages loading [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.faults import Loading
from tests.support.server import DROP, ChatCall, Fault, LoopbackServer
from tests.support.synthetic import synthetic_video

OUTAGE = 40.0


def _env(tmp: str) -> dict[str, str]:
    return dict(
        os.environ,
        OPENAI_API_KEY="sk-bench-0123456789",
        XDG_CONFIG_HOME=f"{tmp}/cfg",
        XDG_DATA_HOME=f"{tmp}/data",
        XDG_CACHE_HOME=f"{tmp}/cache",
    )


def _run(
    server: LoopbackServer,
    info: Path,
    out: Path,
    env: dict[str, str],
    base_url: str | None = None,
    in_flight: int = 8,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    command = [
        sys.executable,
        "-m",
        "yttl",
        str(info),
        "-lp",
        "openai",
        "-ou",
        base_url or server.openai_base_url,
        "-o",
        str(out),
        "-f",
        "json",
        "--no-open",
        "--no-cache",
        "--max-concurrent-llm",
        str(in_flight),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - started, done


def outage(tmp: Path, good: int = 4, in_flight: int = 8) -> dict[str, Any]:
    from collections import Counter

    with LoopbackServer() as server:
        server.state.latency = 1.0
        info = synthetic_video(server, tmp, "twohour", seconds=7200)
        env = _env(str(tmp))
        baseline, done = _run(server, info, tmp / "base", env, in_flight=in_flight)
        assert done.returncode == 0, done.stderr
        server.state.calls.clear()
        window: list[float] = []
        down: list[int] = []

        def fault(call: ChatCall) -> Fault | None:
            if call.index < good:
                return None
            now = time.monotonic()
            window[:] = window or [now]
            if now - window[0] < OUTAGE:
                down.append(call.index)
                return DROP
            return None

        server.state.fault = fault
        wall, done = _run(server, info, tmp / "outage", env, in_flight=in_flight)
        ended = time.monotonic()
        doc = json.loads((tmp / "outage" / "twohour.json").read_text())
        sections = [s for h in doc["hours"] for s in h["sections"]]
        answered = Counter(c.user for c in server.state.successful_calls())
        return {
            "good_calls_first": good,
            "in_flight": in_flight,
            "exit_code": done.returncode,
            "prompts_answered": len(answered),
            "prompts_answered_twice": sum(n > 1 for n in answered.values()),
            "baseline_seconds": round(baseline, 1),
            "wall_seconds": round(wall, 1),
            "outage_seconds": OUTAGE,
            "calls_sent_while_down": len(down),
            "seconds_from_return_to_end": round(ended - (window[0] + OUTAGE), 1),
            "sections_ok": sum(s["status"] == "ok" for s in sections),
            "sections": len(sections),
            "breaker_trips": doc["stats"].get("breaker_trips"),
        }


def down_from_start(tmp: Path) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with LoopbackServer() as server:
        info = synthetic_video(server, tmp, "dead", seconds=7200)
        dead = f"http://127.0.0.1:{port}/v1"
        took, done = _run(server, info, tmp / "dead", _env(str(tmp)), dead)
        errors = [line for line in done.stderr.splitlines() if line.startswith("yttl: error")]
        return {
            "exit_code": done.returncode,
            "seconds_to_error": round(took, 1),
            "error_lines": errors,
            "names_the_url": any(dead in e for e in errors),
        }


def errors_from_start(tmp: Path) -> dict[str, Any]:
    """Every call answered with a 503, from the first: given up in seconds, naming it."""
    with LoopbackServer() as server:
        server.state.latency = 1.0
        server.state.fault = lambda call: (503, {}, b'{"error": {"message": "broken"}}')
        info = synthetic_video(server, tmp, "errors", seconds=7200)
        took, done = _run(server, info, tmp / "errors", _env(str(tmp)), in_flight=16)
        errors = [line for line in done.stderr.splitlines() if line.startswith("yttl: error")]
        return {
            "exit_code": done.returncode,
            "seconds_to_error": round(took, 1),
            "calls_sent": len(server.state.calls),
            "error_lines": errors,
            "names_url_and_status": any(server.openai_base_url in e and "503" in e for e in errors),
        }


def loading(tmp: Path, seconds: float = 30.0, latency: float = 1.5) -> dict[str, Any]:
    """A server loading its model for ``seconds``, against one that is ready."""
    runs: dict[str, Any] = {}
    for name, load in (("ready", 0.0), ("loading", seconds)):
        with LoopbackServer() as server:
            info = synthetic_video(server, tmp, f"twohour-{name}", seconds=7200)
            fake = Loading(seconds=load, latency=latency)
            server.state.latency, server.state.fault = fake.latency, fake.fault
            command = [
                sys.executable,
                "-m",
                "yttl",
                str(info),
                "-lp",
                "openai",
                "-ou",
                server.openai_base_url,
                "-o",
                str(tmp / name),
                "-f",
                "json",
                "--no-open",
                "--no-cache",
            ]
            started = time.perf_counter()
            done = subprocess.run(
                command, env=_env(str(tmp)), capture_output=True, text=True, timeout=600
            )
            ended = time.monotonic()
            wall = time.perf_counter() - started
            written = tmp / name / f"twohour-{name}.json"
            doc = json.loads(written.read_text()) if written.exists() else {"hours": []}
            sections = [s for h in doc["hours"] for s in h["sections"]]
            first = fake.started or ended
            runs[name] = {
                "exit_code": done.returncode,
                "wall_seconds": round(wall, 1),
                "from_first_request_seconds": round(ended - first, 1),
                "from_ready_seconds": round(ended - (fake.ready_at or ended), 1),
                "loading_answers": fake.loading_answers,
                "sections_ok": sum(s["status"] == "ok" for s in sections),
                "waiting_lines": [
                    line for line in done.stderr.splitlines() if "waiting for" in line
                ],
                "error_lines": [line for line in done.stderr.splitlines() if "error" in line],
            }
    ready, late = runs["ready"]["from_first_request_seconds"], runs["loading"]["from_ready_seconds"]
    runs["after_ready_vs_ready_server"] = round(late / ready, 2) if ready else None
    return runs


def batch(tmp: Path) -> dict[str, Any]:
    from yttl.batch import worst_exit
    from yttl.config import load_settings
    from yttl.jobs import run_sources
    from yttl.pipeline import NullObserver

    class Broken(NullObserver):
        def phase(self, name: str) -> None:
            raise RuntimeError("a bug in a stage")

    class Observer:
        def video(self, entry: Any) -> Any:
            return Broken() if "b07" in str(entry.source) else NullObserver()

        def finished(self, outcome: Any) -> None:
            pass

    with LoopbackServer() as server:
        server.state.latency = 0.05
        infos = [synthetic_video(server, tmp, f"b{i:02d}", seconds=900) for i in range(20)]
        out = tmp / "batch"
        out.mkdir()
        for blocked in ("b03", "b11"):
            (out / f"{blocked}.json").mkdir()
        settings, _ = load_settings(
            {
                "llm_provider": "openai",
                "openai_base_url": server.openai_base_url,
                "output_dir": str(out),
                "format": ("json",),
                "open": False,
                "cache": False,
                "library_path": str(tmp / "batch.sqlite"),
            },
            environ={"OPENAI_API_KEY": "sk-bench-0123456789"},
        )
        observer = Observer()
        run = asyncio.run(
            run_sources(
                [str(p) for p in infos],
                settings,
                stop=asyncio.Event(),
                observe=lambda _: contextlib.nullcontext(observer),
            )
        )
        index = json.loads((out / "index.json").read_text())
        return {
            "videos": len(run.outcomes),
            "index_lists": len(index["videos"]),
            "counts": index["counts"],
            "exit_code": worst_exit([o.exit_code for o in run.outcomes]),
            "failed": {
                v["source"].rsplit("/", 1)[-1]: v["error"]["message"]
                for v in index["videos"]
                if v["status"] == "failed"
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "parts",
        nargs="*",
        help="down_from_start errors_from_start batch outage outage16 loading (default: all)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    measures = {
        "down_from_start": down_from_start,
        "errors_from_start": errors_from_start,
        "batch": batch,
        "outage": outage,
        "outage16": lambda tmp: outage(tmp, good=8, in_flight=16),
        "loading": loading,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.parts or list(measures):
            measure = measures[name]
            folder = Path(tmp) / name
            folder.mkdir()
            results[name] = measure(folder)
            print(name, json.dumps(results[name], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
