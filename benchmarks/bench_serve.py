"""``yttl serve`` measured (issue 19), with Debian's Chromium on loopback.

1. Pages: the weight (bytes of the page and what it loads) and the time to first
   contentful paint of ``/`` and ``/search?q=`` at a library of 10,000 videos, and of
   ``/v/ID`` for a ten-hour video (120 sections, a cue every 20 s); median of 5 loads.
2. Jobs: 20 jobs submitted at once (20 videos of 15 minutes: 3 sections and an hour
   summary each) under a provider that allows 30 calls in any 10 s, with the server's
   budget at 170 a minute: wall time against the rate limit's bound (calls / (170/60)),
   the 429s, and the server's peak memory.

    python -m benchmarks.bench_serve [--videos N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from tests.support.browser import CHROMIUM, running_server
from tests.support.server import LoopbackServer
from tests.support.synthetic import caption_text, synthetic_video

from benchmarks.bench_library import documents
from yttl.library import Library
from yttl.models import TranscriptSegment
from yttl.sources.captions import parse_vtt

LONG = "tenhourtalk"


def build_library(path: Path, videos: int) -> None:
    library = Library(path)
    corpus = documents()
    for n in range(videos):
        document, segments = corpus[n % len(corpus)]
        copy = json.loads(json.dumps(document))
        copy["video"]["id"] = f"{copy['video']['id']}-{n}"
        copy["video"]["channel"] = f"Channel {n % 40}"
        library.record_document(copy, segments)  # type: ignore[arg-type]
    seconds = 10 * 3600
    segments = [TranscriptSegment(s.start, s.end, s.text) for s in parse_vtt(caption_text(seconds))]
    hours = []
    for h in range(10):
        sections = [
            {
                "index": k,
                "start": h * 3600.0 + k * 300,
                "end": h * 3600.0 + (k + 1) * 300,
                "url": f"https://www.youtube.com/watch?v={LONG}&t={h * 3600 + k * 300}s",
                "summary": "A summary of five minutes of the talk, two or three sentences "
                "long, as a model writes them. " * 2,
                "status": "ok",
            }
            for k in range(12)
        ]
        hours.append(
            {
                "index": h,
                "start": h * 3600.0,
                "end": (h + 1) * 3600.0,
                "url": f"https://www.youtube.com/watch?v={LONG}&t={h * 3600}s",
                "summary": "What this hour covers, in a paragraph. " * 4,
                "status": "ok",
                "sections": sections,
            }
        )
    library.record_document(
        {
            "video": {
                "id": LONG,
                "title": "Ten hours of lectures",
                "url": f"https://www.youtube.com/watch?v={LONG}",
                "duration": float(seconds),
                "source": "url",
                "extractor": "youtube",
            },
            "summary": "The overview of ten hours. " * 5,
            "hours": hours,
        },
        segments,
    )


def measure_pages(base: str, token: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    pages = {"library": "/", "video (10 h)": f"/v/{LONG}", "search": "/search?q=memory"}
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/?token={token}")
        for name, path in pages.items():
            paints, weights = [], []
            for _ in range(5):
                page.goto(base + path, wait_until="load")
                paint = page.evaluate(
                    "() => { const p = performance.getEntriesByName('first-contentful-paint')[0];"
                    " const n = performance.getEntriesByType('navigation')[0];"
                    " return p ? p.startTime : n.domContentLoadedEventEnd; }"
                )
                weight = page.evaluate(
                    "performance.getEntriesByType('navigation').concat("
                    "performance.getEntriesByType('resource')).reduce((n, e) => n + "
                    "(e.decodedBodySize || 0), 0)"
                )
                paints.append(float(paint))
                weights.append(int(weight))
            found[name] = {
                "first_paint_ms": round(statistics.median(paints), 1),
                "weight_kb": round(statistics.median(weights) / 1024, 1),
            }
        browser.close()
    return found


def _peak_memory(pid: int, stop: threading.Event, peak: list[float]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children())
        except psutil.Error:
            break
        peak[0] = max(peak[0], rss / 2**20)
        time.sleep(0.2)


def measure_jobs(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    with LoopbackServer() as server:
        server.state.rate_limit = (30, 10.0)
        server.state.latency = 0.2
        infos = [synthetic_video(server, tmp, f"job{i:02d}", seconds=900) for i in range(20)]
        args = [
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-o",
            str(tmp / "out"),
            "--requests-per-minute",
            "170",
            "--library-path",
            str(tmp / "jobs.sqlite"),
        ]
        with running_server(args, env) as (base, token, _):
            pid = next(
                p.pid for p in psutil.Process().children() if "serve" in " ".join(p.cmdline())
            )
            stop, peak = threading.Event(), [0.0]
            watcher = threading.Thread(target=_peak_memory, args=(pid, stop, peak), daemon=True)
            watcher.start()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            started = time.perf_counter()
            ids = []
            for info in infos:
                request = urllib.request.Request(
                    f"{base}/api/v1/jobs",
                    method="POST",
                    data=json.dumps({"sources": [str(info)]}).encode(),
                    headers=headers,
                )
                with urllib.request.urlopen(request) as answer:
                    ids.append(json.load(answer)["id"])
            statuses: list[str] = []
            while True:
                request = urllib.request.Request(f"{base}/api/v1/jobs", headers=headers)
                with urllib.request.urlopen(request) as answer:
                    statuses = [j["status"] for j in json.load(answer) if j["id"] in ids]
                if all(s not in ("queued", "running") for s in statuses):
                    break
                time.sleep(0.2)
            wall = time.perf_counter() - started
            stop.set()
        answered = len(server.state.successful_calls())
        bound = answered / (170 / 60)
        return {
            "jobs": len(ids),
            "statuses": sorted(set(statuses)),
            "calls": answered,
            "wall_seconds": round(wall, 1),
            "rate_limit_bound_seconds": round(bound, 1),
            "ratio": round(wall / bound, 2),
            "http_429": server.state.rate_limited,
            "server_peak_mb": round(peak[0]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = dict(
            os.environ,
            OPENAI_API_KEY="sk-bench-0123456789",
            XDG_CONFIG_HOME=f"{tmp}/cfg",
            XDG_DATA_HOME=f"{tmp}/data",
            XDG_CACHE_HOME=f"{tmp}/cache",
            XDG_STATE_HOME=f"{tmp}/state",
        )
        jobs = measure_jobs(root, env) if args.videos > 100 else {}
        print("jobs", json.dumps(jobs), flush=True)
        library = root / "big.sqlite"
        started = time.perf_counter()
        build_library(library, args.videos)
        print(
            f"library of {args.videos + 1} videos built in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        with running_server(
            ["--library-path", str(library), "-lp", "openai", "-ou", "http://127.0.0.1:9/v1"], env
        ) as (base, token, _):
            pages = measure_pages(base, token)
        print("pages", json.dumps(pages), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"pages": pages, "jobs": jobs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
