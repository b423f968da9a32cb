"""Summaries people read (issue 14): what the overview costs, and what a long page costs
a browser.

- calls and LLM-phase time of the two-hour video, with and without the overview, against
  ``--sequential`` (250 ms a call; the overview adds one call latency, no more);
- the HTML of a ten-hour video (the corpus's episodes repeated): its size, and the time
  headless Chromium takes to load and lay it out (less an empty page's), for this
  checkout and, with ``--before PATH``, for another checkout's ``src``.

    python -m benchmarks.bench_readable [--before OLD/src] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.server import LoopbackServer
from tests.support.videos import YOUTUBE, load_info, point_captions_at, two_hour_video, video_ids

from benchmarks.common import yttl_command

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def ten_hours(server: LoopbackServer, directory: Path) -> Path:
    ids = video_ids()
    events: list[dict[str, Any]] = []
    for i in range(60):  # 60 ten-minute parts
        track = json.loads((YOUTUBE / ids[i % len(ids)] / "captions.en.json3").read_text())
        for event in track["events"]:
            if "segs" in event and event.get("tStartMs", 0) < 600_000:
                events.append(dict(event, tStartMs=event["tStartMs"] + i * 600_000))
    server.state.files["tenhours.json3"] = json.dumps({"events": events}).encode()
    info = load_info(ids[0])
    info.update(id="tenhours", title="Ten hours", duration=36_000, chapters=None,
                subtitles={"en": [{"ext": "json3", "url": ""}]}, automatic_captions={})  # fmt: skip
    point_captions_at(info, server, "tenhours")
    path = directory / "tenhours.info.json"
    path.write_text(json.dumps(info))
    return path


def render_seconds(page: Path, profile: Path) -> float:
    assert CHROMIUM is not None, "apt-get install chromium"
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                        page.as_uri()], capture_output=True, check=True)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout's src, for comparison")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        tmp_path = Path(tmp)
        env = dict(
            os.environ,
            OPENAI_API_KEY="sk-bench",
            XDG_CONFIG_HOME=f"{tmp}/cfg",
            XDG_DATA_HOME=f"{tmp}/data",
        )
        server.state.latency = 0.25
        info = two_hour_video(server, tmp_path)
        for name, extra in (("overview", []), ("no overview", ["--no-overview"]),
                            ("sequential", ["--sequential"]),
                            ("sequential, no overview", ["--sequential", "--no-overview"])):  # fmt: skip
            server.state.calls.clear()
            subprocess.run(yttl_command(server, info, tmp_path / "o", *extra), env=env,
                           check=True, capture_output=True)  # fmt: skip
            calls = server.state.calls
            phase = max(c.end for c in calls) - min(c.start for c in calls)
            results[name] = {"calls": len(calls), "llm_phase": phase}
            print(f"{name:<24} {len(calls)} calls, LLM phase {phase:.2f} s", flush=True)
        server.state.latency = 0.0
        long_info = ten_hours(server, tmp_path)
        empty = tmp_path / "empty.html"
        empty.write_text("<!doctype html><title>x</title>")
        base = render_seconds(empty, tmp_path / "profile")
        for label, src in (("after", None), ("before", args.before)):
            if label == "before" and src is None:
                continue
            out = tmp_path / label
            run_env = dict(env, PYTHONPATH=f"{src}:." if src else env.get("PYTHONPATH", "."))
            subprocess.run(yttl_command(server, long_info, out, "-f", "html"), env=run_env,
                           check=True, capture_output=True)  # fmt: skip
            page = out / "tenhours.html"
            seconds = render_seconds(page, tmp_path / "profile") - base
            size = page.stat().st_size
            results[f"html {label}"] = {"bytes": size, "render_seconds": seconds}
            print(f"ten-hour page {label:<6}: {size / 1024:.0f} KB, Chromium load and layout "
                  f"{seconds * 1000:.0f} ms (beyond an empty page's {base * 1000:.0f} ms)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
