"""The library at scale (issue 13): 10,000 videos built from the shared corpus repeated
under new ids; search latency over 100 queries, size on disk, the time recording adds,
and whole-process times of ``yttl search`` and ``yttl --version``.

    python -m benchmarks.bench_library [--videos N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.videos import YOUTUBE, load_info, video_ids

from yttl.library import Library
from yttl.sources.captions import parse_json3


def documents() -> list[tuple[dict[str, object], list[object]]]:
    """Each episode as a run's JSON document (5-minute sections) and its segments."""
    made = []
    for vid in video_ids():
        info = load_info(vid)
        segments = parse_json3((YOUTUBE / vid / "captions.en.json3").read_text())
        duration = float(info["duration"])
        sections = []
        for index, start in enumerate(range(0, int(duration), 300)):
            text = " ".join(s.text for s in segments if start <= s.start < start + 300)
            sections.append({"index": index, "start": float(start),
                             "end": min(start + 300.0, duration),
                             "url": f"https://www.youtube.com/watch?v={vid}&t={start}",
                             "summary": " ".join(text.split()[:60]), "status": "ok"})  # fmt: skip
        document = {"video": {"id": vid, "title": info["title"], "url": info["webpage_url"],
                              "duration": duration, "source": "url", "extractor": "Youtube"},
                    "hours": [{"index": 0, "start": 0.0, "end": duration, "summary": "",
                               "status": "ok", "sections": sections}]}  # fmt: skip
        made.append((document, segments))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    corpus = documents()
    rng = random.Random(11)
    words = sorted(
        {
            w
            for d, _ in corpus
            for h in d["hours"]
            for s in h["sections"]  # type: ignore[index, union-attr]
            for w in s["summary"].lower().split()
            if w.isalpha() and len(w) > 4
        }
    )  # type: ignore[index]
    queries = [" ".join(rng.sample(words, rng.choice((1, 1, 2)))) for _ in range(100)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "library.sqlite"
        library = Library(path)
        started = time.perf_counter()
        record_times = []
        for n in range(args.videos):
            document, segments = corpus[n % len(corpus)]
            copy = json.loads(json.dumps(document))
            copy["video"]["id"] = f"{copy['video']['id']}-{n}"
            begin = time.perf_counter()
            library.record_document(copy, segments)  # type: ignore[arg-type]
            record_times.append(time.perf_counter() - begin)
        built = time.perf_counter() - started
        size = sum(p.stat().st_size for p in Path(tmp).glob("library.sqlite*"))
        latencies = []
        for query in queries:
            begin = time.perf_counter()
            library.search(query)
            latencies.append((time.perf_counter() - begin) * 1000)
        latencies.sort()
        process = {}
        for name, command in (("search", ["search", "--library-path", str(path), "memory"]),
                              ("version", ["--version"])):  # fmt: skip
            times = []
            for _ in range(5):
                begin = time.perf_counter()
                subprocess.run([sys.executable, "-m", "yttl", *command], capture_output=True,
                               check=True)  # fmt: skip
                times.append(time.perf_counter() - begin)
            process[name] = statistics.median(times)
    result = {"videos": args.videos, "build_seconds": built, "size_mb": size / 2**20,
              "record_ms_median": statistics.median(record_times) * 1000,
              "search_ms_p50": latencies[49], "search_ms_p95": latencies[94],
              "process_search_s": process["search"], "process_version_s": process["version"]}  # fmt: skip
    print(f"{args.videos} videos: built in {built:.0f} s, {size / 2**20:.0f} MB on disk; "
          f"recording a video {result['record_ms_median']:.1f} ms (median); search over 100 "
          f"queries p50 {latencies[49]:.1f} ms, p95 {latencies[94]:.1f} ms; whole process: "
          f"yttl search {process['search']:.2f} s, yttl --version {process['version']:.2f} s "
          f"(median of 5)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
