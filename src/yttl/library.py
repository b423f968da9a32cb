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
import itertools
import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from yttl.errors import InputError
from yttl.models import RunResult, TranscriptSegment

__all__ = ["SCHEMA_VERSION", "Hit", "Library", "index_words", "quote_query"]

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT, duration REAL, source TEXT,
    extractor TEXT, provider TEXT, model TEXT, prompt_version TEXT, transcript_source TEXT,
    language TEXT, outputs TEXT NOT NULL, document TEXT NOT NULL, recorded REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY, video_id TEXT NOT NULL, hour INTEGER NOT NULL,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL, url TEXT,
    title TEXT NOT NULL, summary TEXT NOT NULL, transcript TEXT NOT NULL, status TEXT);
CREATE INDEX IF NOT EXISTS sections_video ON sections(video_id, start);
CREATE TABLE IF NOT EXISTS segments (
    video_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS segments_video ON segments(video_id, start);
"""
FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS sections_fts USING fts5(
    title, summary, transcript, content='sections', content_rowid='id',
    tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS sections_added AFTER INSERT ON sections BEGIN
    INSERT INTO sections_fts(rowid, title, summary, transcript)
    VALUES (new.id, yttl_words(new.title), yttl_words(new.summary),
            yttl_words(new.transcript));
END;
CREATE TRIGGER IF NOT EXISTS sections_removed AFTER DELETE ON sections BEGIN
    INSERT INTO sections_fts(sections_fts, rowid, title, summary, transcript)
    VALUES ('delete', old.id, yttl_words(old.title), yttl_words(old.summary),
            yttl_words(old.transcript));
END;
"""
FTS_FILL = """
INSERT INTO sections_fts(rowid, title, summary, transcript)
SELECT id, yttl_words(title), yttl_words(summary), yttl_words(transcript) FROM sections;
"""
FTS_DROP = """
DROP TRIGGER IF EXISTS sections_added;
DROP TRIGGER IF EXISTS sections_removed;
DROP TABLE IF EXISTS sections_fts;
"""
SCHEMA_VERSION = 2
"""1: the first library (``user_version`` 0 in its files); 2: words of Chinese, Japanese
and Korean indexed one character each, so that a word within a run of them is found."""

# Scripts written without spaces between words: FTS5's unicode61 would take a whole run
# (a sentence) as one token. Each of their characters is indexed as a token instead,
# and a query's run becomes a phrase of characters, which matches it anywhere.
_UNSPACED = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
    "\u0e00-\u0e7f\u3000-\u303f\uff66-\uff9f])"
)


def index_words(text: str | None) -> str:
    """Text as the full-text index sees it: unspaced scripts one character a token."""
    if not text:
        return ""
    return _UNSPACED.sub(r" \1 ", text) if _UNSPACED.search(text) else text


_WORD = re.compile(r"\w+", re.UNICODE)
MARK = ("**", "**")  # around the matched words in a snippet


def query_terms(text: str, *, any_word: bool = False) -> list[tuple[str, ...]]:
    """The words of ``text``, each as the tokens the index holds for it (a run of an
    unspaced script is a phrase of its characters); with ``any_word``, such a run gives
    each pair of neighbours instead, so that a question in Japanese finds the passages
    that share a word with it."""
    terms: list[tuple[str, ...]] = []
    for word in _WORD.findall(text):
        tokens = tuple(index_words(word).split())
        if any_word and len(tokens) > 2 and _UNSPACED.search(word):
            terms.extend(itertools.pairwise(tokens))
        else:
            terms.append(tokens)
    return list(dict.fromkeys(terms))


def quote_query(text: str, *, any_word: bool = False) -> str:
    """User text as an FTS5 query: every word quoted (so ``-``, ``:``, ``"`` and ``*``
    are words' edges, never syntax), all of them required, or any of them."""
    phrases = ['"' + " ".join(tokens) + '"' for tokens in query_terms(text, any_word=any_word)]
    return (" OR " if any_word else " ").join(phrases)


@dataclass(frozen=True)
class Hit:
    """One section that matches: where it is, a snippet, and how well it matches."""

    video_id: str
    title: str
    start: float
    end: float
    url: str
    snippet: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "title": self.title, "start": self.start,
                "end": self.end, "url": self.url, "snippet": self.snippet,
                "score": round(self.score, 4)}  # fmt: skip


def _fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.probe USING fts5(x)")
        db.execute("DROP TABLE temp.probe")
        return True
    except sqlite3.OperationalError:
        return False


class Library:
    """The library at ``path``; every method opens its own short-lived connection."""

    def __init__(self, path: Path, *, full_text: bool | None = None) -> None:
        """``full_text=False`` scans instead of using FTS5 (as when SQLite lacks it)."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                self.fts = _fts5_available(db) if full_text is None else full_text
                self._migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"cannot open the library at {path}: {exc}",
                hint="give another with --library-path, or --no-library",
            ) from exc
        if not self.fts:
            logger.warning("this SQLite has no FTS5: search scans the library instead")

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring the file to ``SCHEMA_VERSION`` in place, in one transaction; refuse a
        newer one. The full-text index is (re)built whenever it is missing or was made
        the old way, so a library first written without FTS5 gets one when it can."""
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"the library at {self.path} was made by a newer yttl (schema "
                    f"{version}; this one reads up to {SCHEMA_VERSION})",
                    hint="upgrade yttl, or give another library with --library-path",
                )
            _run_script(db, SCHEMA)
            has_index = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sections_fts'"
                                   ).fetchone() is not None  # fmt: skip
            if self.fts and (not has_index or version < 2):
                for script in (FTS_DROP, FTS_SCHEMA, FTS_FILL):
                    _run_script(db, script)
                # titles weigh most, then summaries, then the transcript
                db.execute("INSERT INTO sections_fts(sections_fts, rank) "
                           "VALUES ('rank', 'bm25(4.0, 2.0, 1.0)')")  # fmt: skip
            if version != SCHEMA_VERSION:
                logger.info("library %s: schema %d -> %d", self.path, version, SCHEMA_VERSION)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
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

        self.record_document(result_to_dict(result), result.transcript.segments, outputs)

    def record_document(self, document: Mapping[str, Any],
                        segments: Sequence[TranscriptSegment] = (),
                        outputs: Sequence[Path] = ()) -> None:  # fmt: skip
        video = document["video"]
        summarizer = document.get("summarizer") or {}
        texts = _section_texts(document, segments)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, for as short as can be
            try:
                db.execute("DELETE FROM sections WHERE video_id = ?", (video["id"],))
                db.execute("DELETE FROM segments WHERE video_id = ?", (video["id"],))
                db.execute(
                    "INSERT OR REPLACE INTO videos VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (video["id"], video["title"], video.get("url"), video.get("duration"),
                     video.get("source"), video.get("extractor"), summarizer.get("provider"),
                     summarizer.get("model"), summarizer.get("prompt_version"),
                     document.get("transcript", {}).get("source"),
                     document.get("transcript", {}).get("language"),
                     json.dumps({p.suffix.lstrip("."): str(p.resolve()) for p in outputs}),
                     json.dumps(document, ensure_ascii=False), time.time()),
                )  # fmt: skip
                rows = [
                    (video["id"], hour["index"], section["index"], section["start"],
                     section["end"], section.get("url"), section.get("title") or "",
                     section.get("summary") or "", texts.get((hour["index"], section["index"])),
                     section.get("status"))
                    for hour in document.get("hours", []) for section in hour.get("sections", [])
                ]  # fmt: skip
                db.executemany(
                    "INSERT INTO sections (video_id, hour, idx, start, end, url, title, "
                    "summary, transcript, status) VALUES (?,?,?,?,?,?,?,?,coalesce(?, ''),?)",
                    rows,
                )
                spoken = [(video["id"], s.start, s.end, s.text) for s in segments]
                db.executemany("INSERT INTO segments VALUES (?,?,?,?)", spoken)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def import_outputs(self, directory: Path) -> tuple[int, list[tuple[str, str]]]:
        """Take in the JSON outputs of earlier runs: (how many, the files passed over with
        why). A file that cannot be read or is not a run's output is named, not fatal."""
        if not directory.is_dir():
            raise InputError(f"no such folder: {directory}",
                             hint="give the folder earlier runs wrote to (their -o)")  # fmt: skip
        taken, refused = 0, []
        for path in sorted(directory.rglob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                refused.append((str(path), f"cannot read it ({exc.strerror or exc})"))
                continue
            except (UnicodeDecodeError, json.JSONDecodeError):
                refused.append((str(path), "not a readable JSON output"))
                continue
            if not isinstance(document, dict) or "video" not in document or \
                    "hours" not in document:  # fmt: skip
                continue  # an index, a report: not a run's output
            try:
                siblings = [p for p in path.parent.glob(f"{glob.escape(path.stem)}.*")
                            if p.suffix != ".tmp"]  # fmt: skip
                self.record_document(document, (), siblings)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                refused.append((str(path), f"not a yttl output ({type(exc).__name__}: {exc})"))
                continue
            taken += 1
        return taken, refused

    # -- reading ------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 10, video: str | None = None,
               any_word: bool = False) -> list[Hit]:  # fmt: skip
        """Sections that bear on ``query``, best first: with every word (the default), or
        with any of them (for a question in plain words: ``yttl ask``)."""
        terms = query_terms(query, any_word=any_word)
        if not terms:
            return []
        words = ["".join(t) if _UNSPACED.search("".join(t)) else " ".join(t) for t in terms]
        with self._connect() as db:
            if self.fts:
                match = quote_query(query, any_word=any_word)
                hits = self._search_fts(db, match, limit, video)
                if any(_UNSPACED.search(w) for w in words):  # the index's offsets are its own
                    hits = [replace(h, snippet=_snippet(h.snippet, words)) for h in hits]
                return hits
            return self._search_scan(db, words, limit, video, any_word)

    @staticmethod
    def _search_fts(db: sqlite3.Connection, match: str, limit: int,
                    video: str | None) -> list[Hit]:  # fmt: skip
        # First the best rows (FTS5 ranks "ORDER BY rank LIMIT n" without sorting every
        # match), then snippets for those rows only.
        if video is None:
            best = db.execute(
                "SELECT rowid, rank FROM sections_fts WHERE sections_fts MATCH ? "
                "ORDER BY rank LIMIT ?", (match, limit),
            ).fetchall()  # fmt: skip
        else:
            best = db.execute(
                "SELECT f.rowid, f.rank FROM sections_fts f JOIN sections s ON s.id = f.rowid "
                "WHERE sections_fts MATCH ? AND s.video_id = ? ORDER BY f.rank LIMIT ?",
                (match, video, limit),
            ).fetchall()  # fmt: skip
        if not best:
            return []
        ids = [row[0] for row in best]
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            "SELECT f.rowid, s.video_id, v.title, s.start, s.end, s.url, "
            "snippet(sections_fts, -1, ?, ?, '…', 16) FROM sections_fts f "
            "JOIN sections s ON s.id = f.rowid JOIN videos v ON v.id = s.video_id "
            f"WHERE sections_fts MATCH ? AND f.rowid IN ({marks})",
            [*MARK, match, *ids],
        ).fetchall()  # fmt: skip
        found = {row[0]: row for row in rows}
        return [Hit(r[1], r[2], r[3], r[4], r[5] or "", r[6], -rank)
                for rowid, rank in best if (r := found.get(rowid))]  # fmt: skip

    @staticmethod
    def _search_scan(db: sqlite3.Connection, words: list[str], limit: int,
                     video: str | None, any_word: bool = False) -> list[Hit]:  # fmt: skip
        rows = db.execute(
            "SELECT s.video_id, v.title, s.start, s.end, s.url, s.title, s.summary, "
            "s.transcript FROM sections s JOIN videos v ON v.id = s.video_id"
            + (" WHERE s.video_id = ?" if video else ""), [video] if video else [],
        ).fetchall()  # fmt: skip
        hits = []
        lowered = [w.lower() for w in words]
        for row in rows:
            text = " ".join(row[5:8])
            haystack = text.lower()
            present = [w for w in lowered if w in haystack]
            if present and (any_word or len(present) == len(lowered)):
                score = sum(haystack.count(w) for w in lowered)
                at = haystack.find(present[0])
                snippet = text[max(at - 60, 0) : at + 100]
                hits.append(Hit(row[0], row[1], row[2], row[3], row[4] or "", snippet, score))
        return sorted(hits, key=lambda h: -h.score)[:limit]

    def is_empty(self) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM videos LIMIT 1").fetchone() is None

    def videos(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT v.id, v.title, v.url, v.duration, v.model, v.recorded, COUNT(s.id) "
                "FROM videos v LEFT JOIN sections s ON s.video_id = v.id GROUP BY v.id "
                "ORDER BY v.recorded DESC"
            ).fetchall()
        return [{"id": r[0], "title": r[1], "url": r[2], "duration": r[3], "model": r[4],
                 "recorded": r[5], "sections": r[6]} for r in rows]  # fmt: skip

    def document(self, video_id: str) -> dict[str, Any]:
        with self._connect() as db:
            row = db.execute("SELECT document FROM videos WHERE id = ?", (video_id,)).fetchone()
        if row is None:
            raise InputError(f"no video {video_id!r} in the library",
                             hint="see yttl list")  # fmt: skip
        document: dict[str, Any] = json.loads(row[0])
        return document

    def transcript(self, video_id: str, start: float = 0.0,
                   end: float | None = None) -> list[TranscriptSegment]:  # fmt: skip
        with self._connect() as db:
            if db.execute("SELECT 1 FROM videos WHERE id = ?", (video_id,)).fetchone() is None:
                raise InputError(f"no video {video_id!r} in the library", hint="see yttl list")
            rows = db.execute(
                "SELECT start, end, text FROM segments WHERE video_id = ? AND end > ? "
                "AND start < ? ORDER BY start", (video_id, start, end if end is not None else 1e12),
            ).fetchall()  # fmt: skip
        return [TranscriptSegment(*row) for row in rows]


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: ``executescript`` would commit the open transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _snippet(text: str, words: Sequence[str]) -> str:
    """The snippet with the words marked by plain search, for unspaced scripts."""
    plain = text.replace(MARK[0], "").replace(MARK[1], "")
    for word in words:
        plain = plain.replace(word, f"{MARK[0]}{word}{MARK[1]}")
    return plain


def _section_texts(
    document: Mapping[str, Any], segments: Sequence[TranscriptSegment]
) -> dict[tuple[int, int], str]:
    """The transcript of each section, from the segments that start in it."""
    bounds = [(h["index"], s["index"], s["start"], s["end"])
              for h in document.get("hours", []) for s in h.get("sections", [])]  # fmt: skip
    texts: dict[tuple[int, int], list[str]] = {(h, i): [] for h, i, _, _ in bounds}
    for segment in segments:
        for hour, index, start, end in bounds:
            if start <= segment.start < end:
                texts[(hour, index)].append(segment.text)
                break
    return {key: " ".join(parts) for key, parts in texts.items()}
