"""The LLM phase of a two-hour video at 1, 2, 4, 8, 16 and 32 calls in flight (issue 6).

24 sections and 2 hour summaries against a loopback OpenAI-compatible server answering
after 200 ms. For each limit: the LLM phase (first call's start to last call's end, as
the server saw it), the speedup over the sequential run of the same benchmark, and the
efficiency against the ideal of DESIGN §6 (sections in ceil(24 / C) rounds, each hour's
summary as soon as its own 12 sections are done). A plot goes to
``docs/llm-concurrency.png``.

    python -m benchmarks.bench_llm_sweep [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from tests.support.server import LoopbackServer
from tests.support.videos import two_hour_video

from yttl.config import Settings
from yttl.pipeline import process_video

LIMITS = (1, 2, 4, 8, 16, 32)


def ideal_rounds(limit: int, hours: tuple[int, ...] = (12, 12)) -> int:
    """Rounds of equally long calls with ``limit`` in flight, when each hour's summary may
    start in the round after its own sections are done (DESIGN §6)."""
    pending = [(h, k) for h, count in enumerate(hours) for k in range(count)]
    left = list(hours)
    ready: list[int] = []
    rounds = 0
    while pending or ready or any(left):
        rounds += 1
        batch = ready[:limit]
        ready = ready[len(batch) :]
        room = limit - len(batch)
        sections, pending = pending[:room], pending[room:]
        for hour, _ in sections:
            left[hour] -= 1
            if left[hour] == 0 and hours[hour] > 1:
                ready.append(hour)
        if not pending and not ready and not any(left):
            break
    return rounds


def measure(server: LoopbackServer, info: Path, limit: int, sequential: bool) -> float:
    server.state.calls.clear()
    settings = Settings(llm_provider="openai", openai_base_url=server.openai_base_url,
                        max_concurrent_llm=limit, sequential=sequential, cache=False,
                        overview=False)  # DESIGN §6's 24 + 2 calls, as measured before  # fmt: skip
    asyncio.run(process_video(str(info), settings, environ={"OPENAI_API_KEY": "sk-bench"}))
    calls = server.state.calls
    return max(c.end for c in calls) - min(c.start for c in calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--plot", type=Path, default=Path("docs/llm-concurrency.png"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        server.state.latency = args.latency
        info = two_hour_video(server, Path(tmp))
        sequential = measure(server, info, 1, True)
        for limit in LIMITS:
            phase = measure(server, info, limit, False)
            ideal = ideal_rounds(limit) * args.latency
            rows.append({"limit": limit, "llm_phase": phase, "speedup": sequential / phase,
                         "ideal_speedup": 26 * args.latency / ideal,
                         "efficiency": ideal / phase})  # fmt: skip
    print(f"sequential: {sequential:.2f} s for 26 calls of {args.latency * 1000:.0f} ms")
    print(f"{'in flight':>9} {'LLM phase':>10} {'speedup':>8} {'ideal':>6} {'of ideal':>9}")
    for r in rows:
        print(
            f"{r['limit']:>9} {r['llm_phase']:>9.2f}s {r['speedup']:>7.2f}x "
            f"{r['ideal_speedup']:>5.1f}x {r['efficiency']:>8.0%}"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([r["limit"] for r in rows], [r["speedup"] for r in rows], "o-", label="measured")
    axis.plot([r["limit"] for r in rows], [r["ideal_speedup"] for r in rows], "s--",
              label="ideal (DESIGN §6)")  # fmt: skip
    axis.set_xscale("log", base=2)
    axis.set_xlabel("LLM calls in flight (--max-concurrent-llm)")
    axis.set_ylabel("speedup over --sequential")
    axis.set_title(f"Two-hour video, 26 calls of {args.latency * 1000:.0f} ms")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot, dpi=120)
    print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({"sequential": sequential, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
