"""How fast the library commands start (issue 24): each as a whole process, against a
small script, in one run.

A library of 200 videos (5-minute sections with summaries) is made where a user's is, under
``XDG_DATA_HOME`` (no vectors: search goes by words, as it must when no embedder is
configured); then, round by round and interleaved, each command runs as ``python -m yttl
...`` in a fresh process, its output into a pipe as in a script: ``list --json``, ``list``
(rows), ``show ID -f json``, ``search WORD --json``, ``search WORD`` (rows), and
``search WORD --json`` through the ``yttl`` entry point that pip installs, as a user types
it. The small script is ``python -c "import sys; sys.stdout.write('ok')"`` under the same
interpreter. The median of the rounds is kept; the goal is 5x the small script or less.

    python -m benchmarks.bench_start [--rounds 15] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.library import talks_library

VIDEOS = 200
SMALL_SCRIPT = [sys.executable, "-c", "import sys; sys.stdout.write('ok')"]


def _library(path: Path) -> str:
    """A library of ``VIDEOS`` videos; the id of one of them."""
    return talks_library(path, VIDEOS, 12)[7]


def _time(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)  # fmt: skip
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[3:]} failed: {done.stderr.strip()}")
    return took


def measure(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data" / "yttl" / "library.sqlite"  # where a user's library is
        path.parent.mkdir(parents=True)
        video = _library(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
        env.update(XDG_CONFIG_HOME=f"{tmp}/config", XDG_DATA_HOME=f"{tmp}/data",
                   XDG_CACHE_HOME=f"{tmp}/cache", COLUMNS="160")  # fmt: skip
        yttl = [sys.executable, "-m", "yttl"]
        commands = {
            "small script": SMALL_SCRIPT,
            "list --json": [*yttl, "list", "--json"],
            "list": [*yttl, "list"],
            "show -f json": [*yttl, "show", video, "-f", "json"],
            "search --json": [*yttl, "search", "sleep", "--json"],
            "search": [*yttl, "search", "sleep"],
        }
        script = Path(sys.executable).with_name("yttl")  # what a user types: the entry point
        if script.is_file():
            commands["yttl search --json (entry point)"] = [str(script), "search", "sleep",
                                                             "--json"]  # fmt: skip
        for command in commands.values():  # warm the file cache
            _time(command, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                times[name].append(_time(command, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["small script"]
    return {
        "rounds": rounds,
        "small_script_ms": round(base * 1000, 1),
        "commands": {name: {"ms": round(seconds * 1000, 1), "x_small_script": round(seconds / base, 2)}
                     for name, seconds in medians.items() if name != "small script"},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.rounds)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
