"""Vectors in the library's own file, and search by meaning over them.

What is embedded, per video: windows of about a minute of its transcript (each led by
the video's title), and its section and hour summaries. Vectors are stored as float32
in SQLite (table ``vectors``, with the model that made them) and scanned with numpy:
the rows of one model are loaded once into a float32 matrix, which a query multiplies in
one BLAS call (150,000 windows of 384 numbers: 230 MB, a few ms). Python's sqlite3 here
cannot load extensions such as sqlite-vec, so the flat scan is the one path.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported when vectors are first scanned: listing needs none
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

    from yttl.models import TranscriptSegment

__all__ = ["VectorIndex", "Window", "windows_of"]

WINDOW_SECONDS = 60.0
MAX_WINDOW_CHARS = 1500


@dataclass(frozen=True)
class Window:
    """A piece of a video to embed: where it is and what it says."""

    kind: str  # window | section | hour
    start: float
    end: float
    text: str


def windows_of(document: Mapping[str, Any], segments: Sequence[TranscriptSegment]) -> list[Window]:
    title = str(document["video"].get("title") or "")
    found: list[Window] = []
    current: list[TranscriptSegment] = []
    for segment in segments:
        if current and segment.start - current[0].start >= WINDOW_SECONDS:
            found.append(_window(title, current))
            current = []
        current.append(segment)
    if current:
        found.append(_window(title, current))
    for hour in document.get("hours", []):
        for section in hour.get("sections", []):
            if section.get("summary"):
                found.append(Window("section", float(section["start"]), float(section["end"]),
                                    f"{title}. {section['summary']}"))  # fmt: skip
        if hour.get("summary") and len(hour.get("sections", [])) > 1:
            found.append(Window("hour", float(hour["start"]), float(hour["end"]),
                                f"{title}. {hour['summary']}"))  # fmt: skip
    return found


def _window(title: str, segments: list[TranscriptSegment]) -> Window:
    text = " ".join(s.text for s in segments)[:MAX_WINDOW_CHARS]
    return Window("window", segments[0].start, segments[-1].end, f"{title}. {text}")


class VectorIndex:
    """The vectors of one model, in memory, reloaded when the table has changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._matrix: Matrix | None = None
        self._rows: list[tuple[str, float, float, str]] = []  # video, start, end, kind

    def _load(self, db: sqlite3.Connection, model: str) -> None:
        import numpy as np

        # every change to the table counts (triggers): no scan of the vectors to find out
        version = db.execute("SELECT value FROM counters WHERE name = 'vectors'").fetchone()
        key = (model, int(version[0]) if version else 0, 0)
        if key == self._key:
            return
        rows = db.execute("SELECT video_id, start, end, kind, vector FROM vectors "
                          "WHERE model = ? ORDER BY id", (model,)).fetchall()  # fmt: skip
        dims = {len(r[4]) for r in rows}
        if rows and len(dims) == 1:
            self._matrix = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32
                                         ).reshape(len(rows), -1).copy()  # fmt: skip
        else:
            self._matrix = np.zeros((0, 0), np.float32)
        self._rows = [(r[0], float(r[1]), float(r[2]), str(r[3])) for r in rows]
        self._key = key

    def nearest(
        self, db: sqlite3.Connection, model: str, query: npt.NDArray[np.float32], limit: int,
        video: str | None = None,
    ) -> list[tuple[float, str, float, float, str]]:  # fmt: skip
        """(similarity, video, start, end, kind) of the closest rows, best first."""
        import numpy as np

        with self._lock:
            self._load(db, model)
            if not self._rows or self._matrix is None or self._matrix.shape[1] != query.shape[-1]:
                return []
            scores = self._matrix @ query.astype(np.float32)
            if video is not None:
                mask = np.array([r[0] == video for r in self._rows])
                scores = np.where(mask, scores, -np.inf)
            count = min(limit, len(scores))
            best = np.argpartition(-scores, count - 1)[:count]
            ordered = best[np.argsort(-scores[best])]
            return [(float(scores[i]), *self._rows[i]) for i in ordered if np.isfinite(scores[i])]
