"""Calls and wall time of a two-hour video under transient faults (issue 5).

The real ``yttl`` command against the loopback chat server (100 ms a call), with 0 %,
10 % and 30 % of prompts failing transiently on their first try (429 with Retry-After,
500, 503, dropped connections, stalls past the 2 s timeout, HTML bodies), and with the
provider down (every call 503).

    python -m benchmarks.bench_faults [--json PATH]
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

from tests.support.faults import Faults
from tests.support.server import LoopbackServer
from tests.support.videos import two_hour_video

SCENARIOS = {"0 %": 0.0, "10 %": 0.1, "30 %": 0.3, "provider down": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
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
                Faults(share) if share is not None
                else (lambda call: (503, {}, b'{"error": {"message": "down"}}'))
            )  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "yttl", str(info), "-lp", "openai", "-ou",
                 server.openai_base_url, "-o", f"{tmp}/{share}", "-f", "json", "--no-open",
                 "--no-cache", "--request-timeout", "2", "-q"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - start
            doc = json.loads(next(Path(f"{tmp}/{share}").glob("*.json")).read_text())
            ok = sum(s["status"] == "ok" for h in doc["hours"] for s in h["sections"])
            results[name] = {"wall": wall, "calls": len(server.state.calls),
                             "sections_ok": ok, "exit": done.returncode,
                             "retries": doc["stats"]["retries"],
                             "breaker_trips": doc["stats"]["breaker_trips"]}  # fmt: skip
            print(f"{name:<14} exit {done.returncode}  calls {len(server.state.calls):>3}  "
                  f"sections ok {ok:>2}/24  retries {doc['stats']['retries']:>2}  "
                  f"wall {wall:5.1f} s", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
