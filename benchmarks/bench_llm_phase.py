"""Parallel vs sequential on a two-hour video from captions (issue 2's measurement).

A loopback OpenAI-compatible server answers every call after ``--latency`` seconds. Each
configuration runs the real ``yttl`` command on the same two-hour video (12 episodes of
``shared/data/youtube``, 10 minutes each, shifted end to end: 24 sections + 2 hours) and is
compared with ``--sequential`` measured in the same run:

- LLM phase: the first call's start to the last call's end, as the server saw them;
- whole run: process start to exit.

    python -m benchmarks.bench_llm_phase [--latency 0.25] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.server import LoopbackServer
from tests.support.videos import two_hour_video

from benchmarks.common import yttl_command

IDEAL_CALLS = 27  # 24 sections, 2 hours, the overview


def run_once(server: LoopbackServer, info: Path, out: Path, extra: list[str]) -> dict[str, float]:
    server.state.calls.clear()
    server.state.max_in_flight = 0
    env = dict(
        os.environ,
        OPENAI_API_KEY="sk-benchmark-0123456789",
        XDG_CONFIG_HOME=str(out / "cfg"),
        XDG_DATA_HOME=str(out / "data"),
    )
    args = yttl_command(server, info, out, *extra)
    start = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"yttl failed ({result.returncode}): {result.stderr}")
    calls = server.state.successful_calls()
    assert len(calls) == IDEAL_CALLS, len(calls)
    return {
        "wall": wall,
        "llm_phase": max(c.end for c in calls) - min(c.start for c in calls),
        "max_in_flight": server.state.max_in_flight,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    configs = {
        "sequential": ["--sequential"],
        "parallel-16": ["--max-concurrent-llm", "16"],
        "defaults": [],
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        server.state.latency = args.latency
        info = two_hour_video(server, Path(tmp))
        for name, extra in configs.items():
            runs = [run_once(server, info, Path(tmp) / name, extra) for _ in range(args.repeat)]
            results[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}

    seq = results["sequential"]
    ideal_c16 = IDEAL_CALLS / 4  # 24 sections in 2 rounds of 16, the hours, the overview
    print(
        f"two-hour video, 24 sections + 2 hours, {args.latency * 1000:.0f} ms per call, "
        f"median of {args.repeat}"
    )
    print(
        f"{'configuration':<14} {'LLM phase s':>11} {'ratio':>7} {'wall s':>8} {'ratio':>7} {'max in flight':>14}"
    )
    for name, r in results.items():
        print(
            f"{name:<14} {r['llm_phase']:>11.3f} {seq['llm_phase'] / r['llm_phase']:>7.2f} "
            f"{r['wall']:>8.3f} {seq['wall'] / r['wall']:>7.2f} {r['max_in_flight']:>14.0f}"
        )
    print(f"ideal LLM-phase ratio at 16 in flight: {ideal_c16:.2f} (4 rounds for 27 calls)")
    summary = {
        "latency": args.latency,
        "results": results,
        "llm_phase_ratio_16": seq["llm_phase"] / results["parallel-16"]["llm_phase"],
        "llm_phase_ratio_defaults": seq["llm_phase"] / results["defaults"]["llm_phase"],
        "wall_ratio_defaults": seq["wall"] / results["defaults"]["wall"],
    }
    print(json.dumps({k: round(v, 3) for k, v in summary.items() if isinstance(v, float)}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
