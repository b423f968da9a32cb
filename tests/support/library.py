"""A library of made-up talks, as a run records them (5-minute sections with summaries),
for the tests and benchmarks of the library commands."""

from __future__ import annotations

from pathlib import Path

from yttl.library import Library

__all__ = ["talks_library"]


def talks_library(path: Path, videos: int, sections: int) -> list[str]:
    """``videos`` talks of ``sections`` sections each at ``path``; their ids."""
    library = Library(path)
    ids = []
    for number in range(videos):
        video_id = f"talk{number:04d}"
        url = f"https://www.youtube.com/watch?v={video_id}"
        parts = [{"index": k, "start": k * 300.0, "end": (k + 1) * 300.0, "status": "ok",
                  "url": f"{url}&t={k * 300}s",
                  "summary": f"Part {k} of talk {number}: memory, sleep and attention."}
                 for k in range(sections)]  # fmt: skip
        library.record_document({
            "video": {"id": video_id, "title": f"Talk {number}", "duration": sections * 300.0,
                      "url": url,
                      "extractor": "youtube", "source": "url"},
            "hours": [{"index": 0, "start": 0.0, "end": sections * 300.0, "summary": "An hour.",
                       "sections": parts}],
        })  # fmt: skip
        ids.append(video_id)
    return ids
