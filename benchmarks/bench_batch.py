"""Batches under one scheduler (issue 10): the real ``yttl`` command on real episodes
served from 127.0.0.1, each scenario measured in one run.

- budget: 12 videos against a provider that allows 30 calls in any 10 s, with
  ``--requests-per-minute 170``: wall time against the bound (calls / budget), and 429s.
- throughput: 10, 25 and 50 videos from captions at 1 s a call, 16 in flight: calls per
  second against the single-video ideal (16/s), and peak memory against the count.
- queued: a two-hour video, 2 calls in flight, 1 s calls, ``--request-timeout 3``:
  every call done at its first attempt.
- faults: 30 % of prompts failing transiently, 20 runs in a row: sections lost in each.
- ray: the 12-video batch, local executor against a local Ray instance.

    python -m benchmarks.bench_batch [SCENARIO ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.faults import Faults
from tests.support.server import LoopbackServer
from tests.support.videos import YOUTUBE, load_info, point_captions_at, two_hour_video, video_ids

from benchmarks.common import yttl_command

SCENARIOS = ("budget", "throughput", "queued", "faults", "ray")


def playlist(server: LoopbackServer, directory: Path, count: int) -> Path:
    """``count`` videos: the corpus's episodes, repeated under new ids when it runs out."""
    ids = video_ids()
    entries = []
    for n in range(count):
        base = ids[n % len(ids)]
        new_id = base if n < len(ids) else f"{base}-{n // len(ids)}"
        for ext in ("json3", "vtt"):
            server.state.files[f"{new_id}.{ext}"] = (
                YOUTUBE / base / f"captions.en.{ext}"
            ).read_bytes()
        info = load_info(base)
        info["id"] = new_id
        point_captions_at(info, server, new_id)
        entries.append(info)
    path = directory / f"batch-{count}.info.json"
    path.write_text(
        json.dumps({"_type": "playlist", "id": f"b{count}", "title": "bench", "entries": entries})
    )
    return path


def yttl(
    server: LoopbackServer, source: Path, out: Path, env: dict[str, str], *extra: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        yttl_command(server, source, out, *extra),
        env=env,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, done


def docs(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "index.json"]


def sections_ok(doc: dict[str, Any]) -> tuple[int, int]:
    items = [s for h in doc["hours"] for s in h["sections"]]
    return sum(s["status"] == "ok" for s in items), len(items)


def budget(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    with LoopbackServer() as server:
        server.state.latency = 0.1
        server.state.rate_limit = (30, 10.0)
        source = playlist(server, tmp, 12)
        wall, done = yttl(server, source, tmp / "budget", env, "--requests-per-minute", "170")
        answered = len(server.state.successful_calls())
        bound = answered / (170 / 60)
        result = {
            "exit": done.returncode,
            "calls": answered,
            "wall": wall,
            "bound": bound,
            "ratio": wall / bound,
            "http_429": server.state.rate_limited,
        }
    print(
        f"budget: {answered} calls in {wall:.1f} s; bound {bound:.1f} s -> {wall / bound:.2f}x "
        f"the bound; {result['http_429']} x 429; exit {done.returncode}",
        flush=True,
    )
    return result


def throughput(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    results = {}
    with LoopbackServer() as server:
        server.state.latency = 1.0
        for count in (10, 25, 50):
            server.state.calls.clear()
            source = playlist(server, tmp, count)
            wall, done = yttl(server, source, tmp / f"tp{count}", env, "--max-concurrent-llm", "16")
            calls = server.state.successful_calls()
            span = max(c.end for c in calls) - min(c.start for c in calls)
            peak = max(d["stats"]["memory_peak_mb"] for d in docs(tmp / f"tp{count}"))
            results[count] = {
                "exit": done.returncode,
                "calls": len(calls),
                "wall": wall,
                "llm_span": span,
                "calls_per_second": len(calls) / span,
                "vs_ideal": len(calls) / span / 16,
                "memory_peak_mb": peak,
                "max_in_flight": server.state.max_in_flight,
            }
            print(
                f"throughput: {count} videos, {len(calls)} calls in {span:.1f} s = "
                f"{len(calls) / span:.2f}/s ({len(calls) / span / 16:.0%} of 16/s); "
                f"peak {peak:.0f} MB; wall {wall:.1f} s; exit {done.returncode}",
                flush=True,
            )
    return results


def queued(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    with LoopbackServer() as server:
        server.state.latency = 1.0
        info = two_hour_video(server, tmp)
        wall, done = yttl(
            server, info, tmp / "queued", env, "--max-concurrent-llm", "2", "--request-timeout", "3"
        )
        doc = docs(tmp / "queued")[0]
        ok, total = sections_ok(doc)
        result = {
            "exit": done.returncode,
            "calls": len(server.state.calls),
            "wall": wall,
            "sections_ok": ok,
            "sections": total,
            "retries": doc["stats"]["retries"],
        }
    print(
        f"queued: {ok}/{total} sections, {result['calls']} calls for 26 prompts, "
        f"{result['retries']} retries, {wall:.1f} s, exit {done.returncode}",
        flush=True,
    )
    return result


def faults(tmp: Path, env: dict[str, str], runs: int = 20) -> dict[str, Any]:
    lost = []
    trips = []
    with LoopbackServer() as server:
        server.state.latency = 0.1
        info = two_hour_video(server, tmp)
        for run in range(runs):
            server.state.fault = Faults(0.3)
            server.state.calls.clear()
            out = tmp / f"faults{run}"
            _, _done = yttl(
                server, info, out, env, "--request-timeout", "2", "--retry-base-delay", "0.2"
            )
            doc = docs(out)[0]
            ok, total = sections_ok(doc)
            lost.append(total - ok)
            trips.append(doc["stats"]["breaker_trips"])
    print(
        f"faults: 30 % transient faults, {runs} runs: sections lost per run {lost}; "
        f"breaker trips {sum(trips)}",
        flush=True,
    )
    return {"runs": runs, "sections_lost": lost, "breaker_trips": trips}


def ray(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    results = {}
    with LoopbackServer() as server:
        server.state.latency = 0.2
        source = playlist(server, tmp, 12)
        for executor in ("local", "ray"):
            wall, done = yttl(
                server,
                source,
                tmp / executor,
                env,
                "--executor",
                executor,
                "--max-concurrent-llm",
                "16",
                "--max-concurrent-videos",
                "12",
            )
            results[executor] = {"exit": done.returncode, "wall": wall}
            print(
                f"ray: {executor:<5} 12 videos in {wall:.1f} s, exit {done.returncode}", flush=True
            )
    results["overhead_per_video"] = (results["ray"]["wall"] - results["local"]["wall"]) / 12
    print(f"ray: overhead {results['overhead_per_video']:.2f} s a video (Ray start included)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = args.scenarios or list(SCENARIOS)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            OPENAI_API_KEY="sk-bench",
            XDG_CONFIG_HOME=f"{tmp}/cfg",
            XDG_DATA_HOME=f"{tmp}/data",
            XDG_CACHE_HOME=f"{tmp}/cache",
        )
        for name in chosen:
            results[name] = globals()[name](Path(tmp), env)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
