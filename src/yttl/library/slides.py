"""Slides in the library: a row per slide (its moment, link, image and text), the text in
its own FTS5 index, so that a search hit on a slide's words points at that slide's start.

A record's slides are never lost to a later run without slides (``--slides`` not given):
that run's document takes the slides already kept."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yttl.library.words import MARK, Hit

__all__ = ["keep_slides", "search_slides_fts", "search_slides_scan"]


def keep_slides(
    db: sqlite3.Connection, document: Mapping[str, Any], outputs: Sequence[Path]
) -> Mapping[str, Any]:
    """Store the document's slides (in the open transaction), and return the document to
    keep: with the slides recorded before when it has none of its own."""
    video_id = document["video"]["id"]
    slides = document.get("slides")
    if slides is None:
        row = db.execute("SELECT document FROM videos WHERE id = ?", (video_id,)).fetchone()
        kept = json.loads(row[0]).get("slides") if row else None
        return {**document, "slides": kept} if kept else document
    db.execute("DELETE FROM slides WHERE video_id = ?", (video_id,))
    # the folder the outputs are in, not where a linked output points
    base = outputs[0].absolute().parent.resolve() if outputs else None
    rows = [
        (
            video_id,
            float(slide["start"]),
            float(slide["end"]),
            slide.get("url"),
            str(slide.get("text") or ""),
            _image(base, video_id, slide.get("image")),
        )
        for slide in slides
    ]
    db.executemany(
        "INSERT INTO slides (video_id, start, end, url, text, image) VALUES (?,?,?,?,?,?)", rows
    )
    return document


_IMAGE_NAME = re.compile(r"\d{6}\.(?:jpg|webp)")


def _image(base: Path | None, video_id: str, image: object) -> str | None:
    """The image's path, if it is a slide image in the video's own slides folder beside
    the outputs: a document (an imported one too) never makes the server hand out any
    other file."""
    from yttl.render.jsonout import slides_folder

    if base is None or not isinstance(image, str):
        return None
    folder = (base / slides_folder(video_id)).resolve()
    path = (base / image).resolve()
    if path.parent != folder or not _IMAGE_NAME.fullmatch(path.name) or not path.is_file():
        return None
    return str(path)


def search_slides_fts(
    db: sqlite3.Connection, match: str, limit: int, video: str | None
) -> list[Hit]:
    """Slides whose text matches, best first, each hit at the slide's start."""
    rows = db.execute(
        "SELECT s.video_id, v.title, s.start, s.end, s.url, "
        "snippet(slides_fts, 0, ?, ?, '…', 16), f.rank FROM slides_fts f "
        "JOIN slides s ON s.id = f.rowid JOIN videos v ON v.id = s.video_id "
        "WHERE slides_fts MATCH ?"
        + (" AND s.video_id = ?" if video else "")
        + " ORDER BY f.rank LIMIT ?",
        [*MARK, match, *([video] if video else []), limit],
    ).fetchall()
    return [Hit(r[0], r[1], r[2], r[3], r[4] or "", r[5], -r[6]) for r in rows]


def search_slides_scan(
    db: sqlite3.Connection, words: list[str], limit: int, video: str | None, any_word: bool
) -> list[Hit]:
    """As ``search_slides_fts``, where SQLite lacks FTS5."""
    rows = db.execute(
        "SELECT s.video_id, v.title, s.start, s.end, s.url, s.text FROM slides s "
        "JOIN videos v ON v.id = s.video_id" + (" WHERE s.video_id = ?" if video else ""),
        [video] if video else [],
    ).fetchall()
    lowered = [w.lower() for w in words]
    hits = []
    for row in rows:
        haystack = row[5].lower()
        present = [w for w in lowered if w in haystack]
        if present and (any_word or len(present) == len(lowered)):
            score = sum(haystack.count(w) for w in lowered)
            hits.append(Hit(row[0], row[1], row[2], row[3], row[4] or "", row[5][:160], score))
    return sorted(hits, key=lambda h: -h.score)[:limit]
