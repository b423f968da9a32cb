"""Slides on the made lecture (issue 31): changes found against the true ones, words read
against the words on the slides, and the run's time with and without ``--slides``.

The lecture of ``tests/support/lecture.py`` (77 s at 640x360: five text slides, two
crossfades, a moving "speaker", espeak-ng speech) goes through ``python -m yttl`` with the
local Whisper (tiny.en) and a loopback OpenAI-compatible server, round by round, with and
without ``--slides`` interleaved, each round with a fresh cache and library. A change is
found when a slide starts within 3 s of it; a word is read when it is in its slide's text.

    python -m benchmarks.bench_slides [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.lecture import LECTURE, make_lecture
from tests.support.server import LoopbackServer
from tests.support.whisper import MODEL_DIR


def _run(media: Path, root: Path, server: LoopbackServer, slides: bool) -> tuple[float, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    for name in ("CONFIG", "CACHE", "DATA", "STATE"):
        env[f"XDG_{name}_HOME"] = str(root / name.lower())
    env.update(OPENAI_API_KEY="sk-loopback-0123456789", YTTL_EMBED="false")
    out = root / "out"
    command = [
        sys.executable,
        "-m",
        "yttl",
        str(media),
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
        "--no-open",
        "-lwm",
        MODEL_DIR,
        "-o",
        str(out),
        "-f",
        "json",
        *(["--slides"] if slides else []),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"yttl failed: {done.stderr.strip()}")
    return took, next(out.glob("*.json"))


def _accuracy(doc: dict[str, Any]) -> dict[str, Any]:
    found = [float(s["start"]) for s in doc.get("slides", [])]
    matched = sum(1 for spec in LECTURE if any(abs(f - spec.start) <= 3.0 for f in found))
    words = [w for spec in LECTURE for line in spec.lines for w in line.split()]
    read = " ".join(str(s["text"]) for s in doc.get("slides", [])).lower()
    read_words = sum(1 for w in words if re.search(rf"\b{re.escape(w.lower())}\b", read))
    return {
        "changes_true": len(LECTURE),
        "changes_found": matched,
        "slides_reported": len(found),
        "words_on_slides": len(words),
        "words_read": read_words,
    }


def measure(rounds: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        media = make_lecture(Path(tmp) / "lecture.mp4")
        accuracy: dict[str, Any] = {}
        for number in range(rounds):
            for kind in ("without", "with") if number % 2 == 0 else ("with", "without"):
                took, path = _run(media, Path(tmp) / f"{kind}-{number}", server, kind == "with")
                times[kind].append(took)
                if kind == "with":
                    accuracy = _accuracy(json.loads(path.read_text()))
    without, with_slides = statistics.median(times["without"]), statistics.median(times["with"])
    return {
        **accuracy,
        "rounds": rounds,
        "cores": os.cpu_count(),
        "seconds_without": round(without, 2),
        "seconds_with": round(with_slides, 2),
        "ratio": round(with_slides / without, 3),
        "all_seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.rounds)
    print(
        f"slide changes found {result['changes_found']}/{result['changes_true']} "
        f"(slides reported {result['slides_reported']}); words read "
        f"{result['words_read']}/{result['words_on_slides']}"
    )
    print(
        f"run time: {result['seconds_without']} s without --slides, {result['seconds_with']} s "
        f"with: {result['ratio']}x (median of {args.rounds}, interleaved)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
