"""The library: every finished run, kept in SQLite for search and questions afterwards.

One file (``$XDG_DATA_HOME/yttl/library.sqlite``): a row per video (its metadata, how it
was made, where its outputs are, and its JSON document), a row per section (summary and
transcript), the transcript's segments (for a time range), and an FTS5 index over the
sections' titles, summaries and transcripts, ranked with bm25. Writers take short
``BEGIN IMMEDIATE`` transactions in WAL mode, so a batch and a second terminal never
corrupt it. Where SQLite lacks FTS5, search falls back to a plain scan (with a warning).
"""

from __future__ import annotations

import glob
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yttl.errors import InputError, UsageError
from yttl.library.hybrid import ANY_WORD_WEIGHT, fuse, search_meaning
from yttl.library.merge import Stored, merge
from yttl.library.model import EmbedModel
from yttl.library.records import (
    check_document,
    embed_model,
    set_embed_model,
    sibling_transcript,
    stored,
    write_record,
)
from yttl.library.schema import fts5_available, migrate
from yttl.library.slides import keep_slides, search_slides_fts, search_slides_scan
from yttl.library.vectors import VectorIndex, Window
from yttl.library.words import (
    Hit,
    has_unspaced,
    index_words,
    mark_words,
    phrase,
    query_terms,
    search_fts,
    search_scan,
    uncommon,
)

if TYPE_CHECKING:
    from yttl.embed.base import Vectors
    from yttl.models import RunResult, TranscriptSegment

__all__ = ["Library"]

MEDIA = "/media"  # the pipeline's own input among a video's files: no suffix has a "/"


def _warn(message: str, *args: object) -> None:
    """A warning on this module's logger; ``logging`` is imported only then (it costs the
    library commands 8 ms of their start, and they rarely have anything to warn of)."""
    import logging

    logging.getLogger(__name__).warning(message, *args)


class Library:
    """The library at ``path``; every method opens its own short-lived connection."""

    def __init__(self, path: Path, *, full_text: bool | None = None) -> None:
        """``full_text=False`` scans instead of using FTS5 (as when SQLite lacks it)."""
        self.path = path
        self.vectors = VectorIndex()  # search by meaning: loaded the first time it is asked
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.connect() as db:
                self.fts = fts5_available(db) if full_text is None else full_text
                migrate(db, self.path, self.fts)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"cannot open the library at {path}: {exc}",
                hint="give another with --library-path, or --no-library",
            ) from exc
        if not self.fts:
            _warn("this SQLite has no FTS5: search scans the library instead")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.create_function("yttl_words", 1, index_words, deterministic=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    # -- writing ------------------------------------------------------------------

    def record(self, result: RunResult, outputs: Sequence[Path] = ()) -> None:
        """Keep a finished run; a later run of the same video replaces it."""
        from yttl.render.jsonout import result_to_dict

        media = Path(result.video.media_path) if result.video.media_path else None
        self.record_document(
            result_to_dict(result), result.transcript.segments, outputs, media=media
        )

    def record_document(
        self,
        document: Mapping[str, Any],
        segments: Sequence[TranscriptSegment] = (),
        outputs: Sequence[Path] = (),
        *,
        media: Path | None = None,
    ) -> None:
        """Keep a video's record, merged with what the library has of it so that it is
        never made poorer (``yttl.library.merge``). ``media`` is the local file the
        pipeline itself read, which ``yttl serve`` may play back: never a path a document
        names (it may be imported)."""
        video_id = document["video"]["id"]
        made = {p.suffix.lstrip("."): str(p.resolve()) for p in outputs}
        made.pop(MEDIA, None)
        if media is not None:
            made[MEDIA] = str(media.resolve())
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, for as short as can be
            try:
                document = keep_slides(db, document, outputs)  # its slides, or those kept
                kept = merge(stored(db, video_id), Stored(document, segments, made))
                write_record(db, kept)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def import_outputs(self, directory: Path) -> tuple[list[str], list[tuple[str, str]]]:
        """Take in the JSON outputs of earlier runs: (the videos taken in, the files passed
        over with why). A file that cannot be read or is not a run's output is named, not
        fatal."""
        if not directory.is_dir():
            raise InputError(
                f"no such folder: {directory}",
                hint="give the folder earlier runs wrote to (their -o)",
            )
        taken: list[str] = []
        refused: list[tuple[str, str]] = []
        for path in sorted(directory.rglob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                refused.append((str(path), f"cannot read it ({exc.strerror or exc})"))
                continue
            except (UnicodeDecodeError, json.JSONDecodeError):
                refused.append((str(path), "not a readable JSON output"))
                continue
            if not isinstance(document, dict) or "video" not in document or "hours" not in document:
                continue  # an index, a report: not a run's output
            try:
                siblings = [
                    p for p in path.parent.glob(f"{glob.escape(path.stem)}.*") if p.suffix != ".tmp"
                ]
                check_document(document)
                self.record_document(document, sibling_transcript(siblings), siblings)
            except (
                KeyError,
                TypeError,
                ValueError,
                AttributeError,
                sqlite3.InterfaceError,
                sqlite3.ProgrammingError,
            ) as exc:  # a value SQLite cannot bind
                refused.append((str(path), f"not a yttl output ({type(exc).__name__}: {exc})"))
                continue
            taken.append(str(document["video"]["id"]))
        return list(dict.fromkeys(taken)), refused

    # -- reading ------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        video: str | None = None,
        any_word: bool = False,
        mode: str = "words",
        vector: Vectors | None = None,
        model: str | None = None,
    ) -> list[Hit]:
        """Sections that bear on ``query``, best first. By words: every word first, then
        any of them (``any_word`` for a question in plain words goes straight there); by
        meaning: nearest to ``vector`` (``query`` embedded by ``model``); hybrid: both,
        fused."""
        if mode == "words" or vector is None or model is None:
            counts: dict[tuple[str, ...], int] = {}
            found = self._words(query, limit, video, any_word, counts)
            if any_word or len(found) >= limit:
                return found
            seen = {(h.video_id, h.start) for h in found}
            more = self._words(query, limit, video, True, counts)
            return [*found, *(h for h in more if (h.video_id, h.start) not in seen)][:limit]
        with self.connect() as db:
            meaning = search_meaning(
                db, self.vectors, model, vector[0] if vector.ndim > 1 else vector, limit * 3, video
            )
        if mode == "meaning":
            return meaning[:limit]
        known: dict[tuple[str, ...], int] = {}
        every = [] if any_word else self._words(query, limit * 3, video, False, known)
        seen = {(h.video_id, h.start) for h in every}
        some = [
            h
            for h in self._words(query, limit * 3, video, True, known)
            if (h.video_id, h.start) not in seen
        ]
        return fuse([(meaning, 1.0), (every, 1.0), (some, ANY_WORD_WEIGHT)], limit)

    def _words(
        self,
        query: str,
        limit: int,
        video: str | None,
        any_word: bool,
        counts: dict[tuple[str, ...], int] | None = None,
    ) -> list[Hit]:
        terms = query_terms(query, any_word=any_word)
        if not terms:
            return []
        words = ["".join(t) if has_unspaced("".join(t)) else " ".join(t) for t in terms]
        with self.connect() as db:
            if self.fts:
                kept = uncommon(db, terms, any_word=any_word, counts=counts)
                match = (" OR " if any_word else " ").join(phrase(t) for t in kept)
                hits = _by_score(
                    search_fts(db, match, limit, video),
                    search_slides_fts(db, match, limit, video),
                    limit,
                )
                if any(has_unspaced(w) for w in words):  # the index's offsets are its own
                    hits = [replace(h, snippet=mark_words(h.snippet, words)) for h in hits]
                return hits
            return _by_score(
                search_scan(db, words, limit, video, any_word),
                search_slides_scan(db, words, limit, video, any_word),
                limit,
            )

    def store_vectors(
        self, video_id: str, model: EmbedModel, windows: list[Window], vectors: Vectors
    ) -> None:
        """A video's vectors by ``model``, replacing what it had. The first vectors record
        the library's model; vectors of another are refused (``yttl library reindex``
        changes the model first)."""
        rows = [
            (video_id, w.kind, w.start, w.end, model.name, v.astype("float32").tobytes())
            for w, v in zip(windows, vectors, strict=True)
        ]
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                recorded = embed_model(db)
                if recorded is None or (recorded.name == model.name and recorded != model):
                    set_embed_model(db, model)  # the first, or where its text went now
                elif recorded.name != model.name:
                    raise UsageError(
                        f"not storing vectors of {model.name}: the library's model is "
                        f"{recorded.name}",
                        hint="yttl library reindex --embed-provider/--embed-model changes it",
                    )
                db.execute("DELETE FROM vectors WHERE video_id = ?", (video_id,))
                db.executemany(
                    "INSERT INTO vectors (video_id, kind, start, end, model, vector) "
                    "VALUES (?,?,?,?,?,?)",
                    rows,
                )
                db.execute("UPDATE videos SET vectors_stale = 0 WHERE id = ?", (video_id,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def embed_model(self) -> EmbedModel | None:
        """The library's embedding model: recorded when it first embedded (a library
        from before the record: the model of most of its vectors)."""
        with self.connect() as db:
            return embed_model(db)

    def set_embed_model(self, model: EmbedModel) -> None:
        """Change the library's model (``yttl library reindex`` does, when asked to)."""
        with self.connect() as db:
            set_embed_model(db, model)

    def drop_other_vectors(self, model: str) -> None:
        """Vectors of other models than ``model``: no search reads them."""
        with self.connect() as db:
            db.execute("DELETE FROM vectors WHERE model != ?", (model,))

    def unembedded(self, model: str, among: Sequence[str] | None = None) -> list[str]:
        """Videos (of ``among``, else all) with no vectors by ``model`` (none yet, or
        another model's), or whose vectors are older than their record."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT id FROM videos WHERE vectors_stale = 1 OR id NOT IN "
                "(SELECT DISTINCT video_id FROM vectors WHERE model = ?) "
                "ORDER BY recorded",
                (model,),
            ).fetchall()
        found = [r[0] for r in rows]
        return found if among is None else [v for v in found if v in set(among)]

    def uncovered(self, model: str) -> int:
        """How many videos search by meaning cannot find: no vectors of ``model``."""
        with self.connect() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM videos WHERE id NOT IN (SELECT DISTINCT video_id "
                "FROM vectors WHERE model = ?)",
                (model,),
            ).fetchone()
        return int(row[0])

    def vector_models(self) -> list[str]:
        """The models that made the library's vectors, the most used first."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT model FROM vectors GROUP BY model ORDER BY COUNT(*) DESC"
            ).fetchall()
        return [r[0] for r in rows]

    def is_empty(self) -> bool:
        with self.connect() as db:
            return db.execute("SELECT 1 FROM videos LIMIT 1").fetchone() is None

    def videos(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Videos, newest first (what ``yttl list --json`` prints): all, or a page of
        them, of one channel or status."""
        where, args = self._filters(channel, status)
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        with self.connect() as db:
            rows = db.execute(
                "SELECT v.id, v.title, v.url, v.duration, v.model, v.recorded, "
                "(SELECT COUNT(*) FROM sections s WHERE s.video_id = v.id), "
                f"v.channel, v.upload_date, v.status, v.source FROM videos v {where} "
                f"ORDER BY v.recorded DESC{page}",
                [*args, *((limit, offset) if limit is not None else ())],
            ).fetchall()
        return [
            {
                "id": r[0],
                "title": r[1],
                "url": r[2],
                "duration": r[3],
                "model": r[4],
                "recorded": r[5],
                "sections": r[6],
                "channel": r[7],
                "upload_date": r[8],
                "status": r[9] or "ok",
                "source": r[10],
            }
            for r in rows
        ]

    def count(self, *, channel: str | None = None, status: str | None = None) -> int:
        where, args = self._filters(channel, status)
        with self.connect() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM videos v {where}", args).fetchone()[0])

    def channels(self) -> list[str]:
        with self.connect() as db:
            rows = db.execute(
                "SELECT DISTINCT channel FROM videos WHERE channel IS NOT NULL ORDER BY channel"
            ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _filters(channel: str | None, status: str | None) -> tuple[str, list[str]]:
        clauses, args = [], []
        if channel is not None:
            clauses.append("v.channel = ?")
            args.append(channel)
        if status is not None:
            clauses.append("coalesce(v.status, 'ok') = ?")
            args.append(status)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def media(self, video_id: str) -> Path | None:
        """The local file a video was made from, as the pipeline recorded it when it read
        it (never the URL a document names), if it is still there."""
        with self.connect() as db:
            row = db.execute("SELECT outputs FROM videos WHERE id = ?", (video_id,)).fetchone()
        try:
            recorded = json.loads(row[0]).get(MEDIA) if row else None
        except (ValueError, AttributeError):
            recorded = None
        path = Path(recorded) if isinstance(recorded, str) else None
        return path if path is not None and path.is_file() else None

    def slide_image(self, video_id: str, number: int) -> Path | None:
        """The image of a video's ``number``-th slide (in time order) that a run wrote, if
        it is still there."""
        with self.connect() as db:
            row = db.execute(
                "SELECT image FROM slides WHERE video_id = ? ORDER BY start LIMIT 1 OFFSET ?",
                (video_id, max(number, 0)),
            ).fetchone()
        if row is None or not row[0]:
            return None
        path = Path(row[0])
        return path if path.is_file() else None

    def document(self, video_id: str) -> dict[str, Any]:
        with self.connect() as db:
            row = db.execute("SELECT document FROM videos WHERE id = ?", (video_id,)).fetchone()
        if row is None:
            raise InputError(f"no video {video_id!r} in the library", hint="see yttl list")
        document: dict[str, Any] = json.loads(row[0])
        return document

    def transcript(
        self, video_id: str, start: float = 0.0, end: float | None = None
    ) -> list[TranscriptSegment]:
        with self.connect() as db:
            if db.execute("SELECT 1 FROM videos WHERE id = ?", (video_id,)).fetchone() is None:
                raise InputError(f"no video {video_id!r} in the library", hint="see yttl list")
            rows = db.execute(
                "SELECT start, end, text FROM segments WHERE video_id = ? AND end > ? "
                "AND start < ? ORDER BY start",
                (video_id, start, end if end is not None else 1e12),
            ).fetchall()
        from yttl.models import TranscriptSegment  # listing and search never need it

        return [TranscriptSegment(*row) for row in rows]


def _by_score(sections: list[Hit], slides: list[Hit], limit: int) -> list[Hit]:
    """Section and slide hits together, best first."""
    if not slides:
        return sections
    return sorted([*sections, *slides], key=lambda h: -h.score)[:limit]
