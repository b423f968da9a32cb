"""Run every benchmark, one after another (each prints ratios measured in one run).

python -m benchmarks            # all; results as JSON in benchmarks/results/
python -m benchmarks llm_phase llm_sweep
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = {
    "llm_phase": ["benchmarks.bench_llm_phase"],
    "llm_sweep": ["benchmarks.bench_llm_sweep"],
    "transcribe": ["benchmarks.bench_transcribe", "speed", "overlap"],
    "fidelity": ["benchmarks.bench_transcribe", "speed", "unseen"],
    "memory": ["benchmarks.bench_transcribe", "memory"],
    "local_llm": ["benchmarks.bench_local_llm"],
    "faults": ["benchmarks.bench_faults"],
    "batch": ["benchmarks.bench_batch"],
    "captions": ["benchmarks.bench_captions"],
    "library": ["benchmarks.bench_library"],
    "readable": ["benchmarks.bench_readable"],
    "outages": ["benchmarks.bench_outages"],
    "serve": ["benchmarks.bench_serve"],
    "search": ["benchmarks.bench_search"],
    "start": ["benchmarks.bench_start"],
    "slides": ["benchmarks.bench_slides"],
    "chat": ["benchmarks.bench_chat"],
}


def main() -> int:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    RESULTS.mkdir(exist_ok=True)
    for name in chosen:
        module, *args = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        command = [sys.executable, "-m", module, *args, "--json", str(RESULTS / f"{name}.json")]
        if subprocess.run(command).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
