"""Writing a video's record into the library's file, in the caller's transaction: what
is stored of it (for ``yttl.library.merge`` to judge), the record kept, the library's
own settings (its embedding model), and the transcript a run wrote beside its JSON."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yttl.errors import YttlError
from yttl.library.merge import Kept, Stored
from yttl.library.model import EmbedModel

if TYPE_CHECKING:
    from yttl.models import TranscriptSegment

__all__ = [
    "check_document",
    "document_status",
    "embed_model",
    "set_embed_model",
    "sibling_transcript",
    "stored",
    "write_record",
]


def write_record(db: sqlite3.Connection, kept: Kept) -> None:
    """Store ``kept`` as the video's record (in the caller's transaction)."""
    document, video = kept.document, kept.document["video"]
    summarizer = document.get("summarizer") or {}
    transcript = document.get("transcript") or {}
    texts = section_texts(document, kept.segments)
    stale = db.execute("SELECT vectors_stale FROM videos WHERE id = ?", (video["id"],)).fetchone()
    db.execute("DELETE FROM sections WHERE video_id = ?", (video["id"],))
    db.execute("DELETE FROM segments WHERE video_id = ?", (video["id"],))
    db.execute(
        "INSERT OR REPLACE INTO videos (id, title, url, duration, source, extractor, "
        "provider, model, prompt_version, transcript_source, language, outputs, "
        "document, recorded, channel, upload_date, status, vectors_stale) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            video["id"],
            video["title"],
            video.get("url"),
            video.get("duration"),
            video.get("source"),
            video.get("extractor"),
            summarizer.get("provider"),
            summarizer.get("model"),
            summarizer.get("prompt_version"),
            transcript.get("source"),
            transcript.get("language"),
            json.dumps(kept.outputs),
            json.dumps(document, ensure_ascii=False),
            time.time(),
            video.get("channel"),
            video.get("upload_date"),
            document_status(document),
            int(kept.changed or bool(stale and stale[0])),
        ),
    )
    rows = [
        (
            video["id"],
            hour["index"],
            section["index"],
            section["start"],
            section["end"],
            section.get("url"),
            section.get("title") or "",
            section.get("summary") or "",
            texts.get((hour["index"], section["index"])),
            section.get("status"),
        )
        for hour in document.get("hours", [])
        for section in hour.get("sections", [])
    ]
    db.executemany(
        "INSERT INTO sections (video_id, hour, idx, start, end, url, title, "
        "summary, transcript, status) VALUES (?,?,?,?,?,?,?,?,coalesce(?, ''),?)",
        rows,
    )
    spoken = [(video["id"], s.start, s.end, s.text) for s in kept.segments]
    db.executemany("INSERT INTO segments VALUES (?,?,?,?)", spoken)


def embed_model(db: sqlite3.Connection) -> EmbedModel | None:
    row = db.execute("SELECT value FROM library_settings WHERE name = 'embed_model'").fetchone()
    if row is not None:
        return EmbedModel.from_json(row[0])
    found = db.execute(
        "SELECT model FROM vectors GROUP BY model ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    return EmbedModel.from_name(found[0]) if found else None


def set_embed_model(db: sqlite3.Connection, model: EmbedModel) -> None:
    db.execute(
        "INSERT OR REPLACE INTO library_settings VALUES ('embed_model', ?)", (model.to_json(),)
    )


def stored(db: sqlite3.Connection, video_id: str) -> Stored | None:
    """The record the library has of a video, if any."""
    row = db.execute("SELECT document, outputs FROM videos WHERE id = ?", (video_id,)).fetchone()
    if row is None:
        return None
    from yttl.models import TranscriptSegment

    spoken = db.execute(
        "SELECT start, end, text FROM segments WHERE video_id = ? ORDER BY start", (video_id,)
    ).fetchall()
    return Stored(
        json.loads(row[0]), [TranscriptSegment(*r) for r in spoken], json.loads(row[1] or "{}")
    )


def section_texts(
    document: Mapping[str, Any], segments: Sequence[TranscriptSegment]
) -> dict[tuple[int, int], str]:
    """The transcript of each section, from the segments that start in it."""
    bounds = [
        (h["index"], s["index"], s["start"], s["end"])
        for h in document.get("hours", [])
        for s in h.get("sections", [])
    ]
    texts: dict[tuple[int, int], list[str]] = {(h, i): [] for h, i, _, _ in bounds}
    for segment in segments:
        for hour, index, start, end in bounds:
            if start <= segment.start < end:
                texts[(hour, index)].append(segment.text)
                break
    return {key: " ".join(parts) for key, parts in texts.items()}


def check_document(document: Mapping[str, Any]) -> None:
    """ValueError when an imported JSON is not shaped as a run's output (a hand-edited or
    foreign file): it is passed over, not stored to break ``yttl show`` or search later."""
    video = document["video"]
    if not isinstance(video["id"], str) or not video["id"] or not isinstance(video["title"], str):
        raise ValueError("its video id or title is not a text")
    if video.get("duration") is not None and not _number(video["duration"]):
        raise ValueError("its duration is not a number of seconds")
    if not all(isinstance(video.get(k) or "", str) for k in ("url", "channel", "source")):
        raise ValueError("its url, channel or source is not a text")
    for hour in document["hours"]:
        for part in (hour, *hour["sections"]):
            if not all(_number(part.get(k)) for k in ("start", "end")):
                raise ValueError("a start or end that is not a number of seconds")
            if not isinstance(part.get("index"), int):
                raise ValueError("an index that is not a whole number")
            if not all(isinstance(part.get(k) or "", str) for k in ("title", "summary")):
                raise ValueError("a title or summary that is not a text")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def document_status(document: Mapping[str, Any]) -> str:
    """ok, partial (some sections failed) or failed (none summarized), as in a batch."""
    sections = [s for h in document.get("hours", []) for s in h.get("sections", [])]
    failed = sum(1 for s in sections if s.get("status") == "failed")
    if sections and failed == len(sections):
        return "failed"
    return "partial" if failed else "ok"


def sibling_transcript(siblings: Sequence[Path]) -> list[TranscriptSegment]:
    """The transcript a run wrote beside its JSON (``-f srt`` or ``-f vtt``), so that an
    imported video is searched, and embedded, by what was said, not its summaries alone."""
    from yttl.sources.captions import decode_caption_bytes, parse_captions

    for path in sorted(siblings, key=lambda p: p.suffix != ".srt"):
        if path.suffix in (".srt", ".vtt"):
            try:
                return parse_captions(decode_caption_bytes(path.read_bytes()), path.suffix[1:])
            except (OSError, YttlError) as exc:
                import logging

                logging.getLogger(__name__).warning(
                    "%s: its transcript is not taken in (%s)", path, exc
                )
    return []
