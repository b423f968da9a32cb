"""Search by meaning, and its fusion with search by words (reciprocal rank fusion).

Both rank sections. By meaning, a section counts as close as its closest window or
summary, and its hit links to that window's moment; by words, bm25 over every word first,
then over any of them (so a query never comes back empty while one of its words is in
the library). Fused, a section scores ``sum(weight / (60 + rank))`` over the rankings:
meaning and all-words at full weight, the any-word fallback at half (a section that
shares only "the" or "de" with a question is weak evidence).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from yttl.library.words import Hit
from yttl.render.links import timestamp_url

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from yttl.library.vectors import VectorIndex

__all__ = ["ANY_WORD_WEIGHT", "RRF_K", "fuse", "search_meaning"]

RRF_K = 60
ANY_WORD_WEIGHT = 0.5
CANDIDATES = 200  # nearest rows looked at, for the sections they fall in


def search_meaning(db: sqlite3.Connection, index: VectorIndex, model: str,
                   vector: npt.NDArray[np.float32], limit: int,
                   video: str | None = None) -> list[Hit]:  # fmt: skip
    """Sections whose windows and summaries are nearest to ``vector``, best first."""
    from yttl.models import VideoInfo  # here: a search by words never needs the models

    rows = index.nearest(db, model, vector, max(CANDIDATES, limit * 8), video)
    if not rows:
        return []
    videos = sorted({r[1] for r in rows})
    marks = ",".join("?" * len(videos))
    sections: dict[str, list[tuple[float, float, str]]] = {}
    for video_id, start, end, summary in db.execute(
        f"SELECT video_id, start, end, summary FROM sections WHERE video_id IN ({marks}) "
        "ORDER BY video_id, start", videos,
    ):  # fmt: skip
        sections.setdefault(video_id, []).append((float(start), float(end), str(summary)))
    info = {r[0]: r[1:] for r in db.execute(
        f"SELECT id, title, url, extractor, source, duration FROM videos WHERE id IN ({marks})",
        videos)}  # fmt: skip
    best: dict[tuple[str, float], Hit] = {}
    for score, video_id, start, _end, kind in rows:
        spans = sections.get(video_id, [])
        span = next((s for s in spans if s[0] <= start < s[1]), spans[-1] if spans else None)
        if span is None or video_id not in info or (video_id, span[0]) in best:
            continue
        title, url, extractor, source, duration = info[video_id]
        moment = start if kind == "window" else span[0]
        link = timestamp_url(VideoInfo(video_id, title, url or "", float(duration or 0),
                                       extractor or "", source or "url"), moment)  # fmt: skip
        snippet = span[2][:240] + ("…" if len(span[2]) > 240 else "")
        best[(video_id, span[0])] = Hit(video_id, title, span[0], span[1], link, snippet, score)
        if len(best) >= limit:
            break
    return list(best.values())


def fuse(rankings: Sequence[tuple[Sequence[Hit], float]], limit: int) -> list[Hit]:
    """Weighted reciprocal rank fusion at section level, over (ranking, weight) pairs;
    the first ranking that has a section gives its hit (by meaning first: its link is
    the best window's moment)."""
    scores: dict[tuple[str, float], float] = {}
    hits: dict[tuple[str, float], Hit] = {}
    for ranking, weight in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.video_id, hit.start)
            scores[key] = scores.get(key, 0.0) + weight / (RRF_K + rank)
            hits.setdefault(key, hit)
    ordered = sorted(scores, key=lambda k: -scores[k])[:limit]
    return [Hit(hits[k].video_id, hits[k].title, hits[k].start, hits[k].end, hits[k].url,
                hits[k].snippet, scores[k]) for k in ordered]  # fmt: skip
