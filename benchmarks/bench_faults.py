"""Calls and wall time of a two-hour video under transient faults (issue 5).

The real ``yttl`` command against the loopback chat server (100 ms a call), with 0 %,
10 % and 30 % of prompts failing transiently on their first try (429 with Retry-After,
500, 503, dropped connections, stalls past the 2 s timeout, HTML bodies), and with the
provider down (every call 503).

``--scattered N`` (issue 29): N runs of the two-hour video at the provider's default
concurrency and default retries, where 30 % of requests fail at once (a 500, chosen by a
hash of the run, the prompt and its try) while successes take ``--latency`` (1.5 s):
sections lost and breaker trips, per run. Run it against another checkout's sources with
``PYTHONPATH=/path/to/src`` to compare.

    python -m benchmarks.bench_faults [--json PATH]
    python -m benchmarks.bench_faults --scattered 20 [--latency 1.5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.faults import FastFaults, Faults
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from tests.support.videos import two_hour_video

SCENARIOS = {"0 %": 0.0, "10 %": 0.1, "30 %": 0.3, "provider down": None}


def scattered(runs: int, latency: float, share: float = 0.3) -> dict[str, object]:
    """``runs`` two-hour runs under scattered fast faults, in this process (the real
    pipeline, as ``yttl VIDEO -lp openai -ou URL -f json`` runs it, without the start-up)."""
    import asyncio

    import yttl
    from yttl.config import load_settings
    from yttl.jobs import run_sources

    per_run: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            with LoopbackServer() as server:
                info = synthetic_video(server, Path(tmp), f"run{run}", seconds=7200)
                faults = FastFaults(share, seed=run, latency=latency)
                server.state.latency, server.state.fault = faults.latency, faults.fault
                settings, _ = load_settings(
                    {
                        "llm_provider": "openai",
                        "openai_base_url": server.openai_base_url,
                        "output_dir": f"{tmp}/o{run}",
                        "format": ("json",),
                        "open": False,
                        "cache": False,
                        "library": False,
                        "quiet": True,
                    },
                    environ={"OPENAI_API_KEY": "sk-bench-0123456789"},
                )
                start = time.perf_counter()
                done = asyncio.run(run_sources([str(info)], settings, stop=asyncio.Event()))
                wall = time.perf_counter() - start
                doc = json.loads(Path(f"{tmp}/o{run}/run{run}.json").read_text())
                sections = [s for h in doc["hours"] for s in h["sections"]]
                lost = sum(s["status"] != "ok" for s in sections)
                row = {
                    "exit": done.outcomes[0].exit_code,
                    "sections_lost": lost,
                    "breaker_trips": doc["stats"]["breaker_trips"],
                    "failures": len(doc.get("failures", [])),
                    "requests": len(server.state.calls),
                    "failed_fast": faults.failed.total(),
                    "wall": round(wall, 1),
                }
                per_run.append(row)
                print(f"run {run:>2}: {row}", flush=True)

    def total(key: str) -> int:
        return sum(int(row[key]) for row in per_run)

    def runs_with(key: str) -> int:
        return sum(1 for row in per_run if row[key])

    return {
        "yttl": str(Path(yttl.__file__).parent),
        "runs": runs,
        "latency": latency,
        "share": share,
        "sections_lost": total("sections_lost"),
        "runs_losing_a_section": runs_with("sections_lost"),
        "breaker_trips": total("breaker_trips"),
        "runs_with_a_trip": runs_with("breaker_trips"),
        "runs_not_exit_0": sum(1 for row in per_run if row["exit"] != 0),
        "per_run": per_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--scattered", type=int, metavar="N", help="N runs (issue 29)")
    parser.add_argument("--latency", type=float, default=1.5)
    args = parser.parse_args()
    if args.scattered:
        found = scattered(args.scattered, args.latency)
        print(json.dumps({k: v for k, v in found.items() if k != "per_run"}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(found, indent=2) + "\n")
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        server.state.latency = 0.1
        info = two_hour_video(server, Path(tmp))
        env = dict(
            os.environ,
            OPENAI_API_KEY="sk-bench",
            XDG_CONFIG_HOME=f"{tmp}/cfg",
            XDG_DATA_HOME=f"{tmp}/data",
        )
        for name, share in SCENARIOS.items():
            server.state.calls.clear()
            server.state.fault = (
                Faults(share)
                if share is not None
                else (lambda call: (503, {}, b'{"error": {"message": "down"}}'))
            )
            start = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "yttl",
                    str(info),
                    "-lp",
                    "openai",
                    "-ou",
                    server.openai_base_url,
                    "-o",
                    f"{tmp}/{share}",
                    "-f",
                    "json",
                    "--no-open",
                    "--no-cache",
                    "--request-timeout",
                    "2",
                    "-q",
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            doc = json.loads(next(Path(f"{tmp}/{share}").glob("*.json")).read_text())
            ok = sum(s["status"] == "ok" for h in doc["hours"] for s in h["sections"])
            results[name] = {
                "wall": wall,
                "calls": len(server.state.calls),
                "sections_ok": ok,
                "exit": done.returncode,
                "retries": doc["stats"]["retries"],
                "breaker_trips": doc["stats"]["breaker_trips"],
            }
            print(
                f"{name:<14} exit {done.returncode}  calls {len(server.state.calls):>3}  "
                f"sections ok {ok:>2}/24  retries {doc['stats']['retries']:>2}  "
                f"wall {wall:5.1f} s",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
