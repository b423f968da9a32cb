"""The results cache that makes reruns resume: nothing finished is computed twice.

One SQLite file (standard library) holds LLM completions, transcripts and slides. A
completion is keyed by provider, model, prompt version, output budget and the exact
messages; a transcript or a video's slides by the source and every option that shaped
them. Only successes are stored, each as soon as it exists, so a crash or Ctrl-C loses at
most the calls in flight.
No secret is part of any key or value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from yttl.llm.base import Completion, Message
from yttl.models import Slide, TranscriptSegment
from yttl.transcribe.base import ChunkRecord

__all__ = ["CachedChunks", "ResultsCache", "completion_key", "slides_key", "transcript_key"]

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transcripts (
    key TEXT PRIMARY KEY, segments TEXT NOT NULL, language TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slide_sets (
    key TEXT PRIMARY KEY, slides TEXT NOT NULL, images BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    key TEXT PRIMARY KEY, segments TEXT NOT NULL, loud REAL NOT NULL, speech REAL NOT NULL,
    covered REAL, created REAL NOT NULL);
"""


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def completion_key(
    provider: str, model: str, prompt_version: str, max_tokens: int, messages: Sequence[Message]
) -> str:
    return _digest(
        "completion",
        provider,
        model,
        prompt_version,
        max_tokens,
        [(m.role, m.content) for m in messages],
    )


def transcript_key(source: str, options: dict[str, object]) -> str:
    return _digest("transcript", source, options)


def slides_key(source: str, options: dict[str, object]) -> str:
    return _digest("slides", source, options)


class ResultsCache:
    """``ResultsCache(None)`` is a cache that remembers nothing (``--no-cache``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    @classmethod
    def open(cls, path: Path) -> ResultsCache:
        """The cache at ``path``; a corrupt file is set aside (and a new one started), an
        unwritable place means running without a cache. Either is said in one warning:
        a cache is never a reason to fail a run."""
        try:
            return cls._checked(path)
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc) and "malformed" not in str(exc):
                logger.warning(
                    "the results cache %s cannot be used (%s); running without it", path, exc
                )
                return cls(None)
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            try:
                path.replace(aside)
                for suffix in ("-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
                logger.warning(
                    "the results cache %s was corrupt; set aside as %s", path, aside.name
                )
                return cls._checked(path)
            except (OSError, sqlite3.Error) as again:
                logger.warning(
                    "the results cache %s is corrupt (%s); running without it", path, again
                )
                return cls(None)
        except OSError as exc:
            logger.warning(
                "the results cache %s cannot be written (%s); running without it",
                path,
                exc.strerror or exc,
            )
            return cls(None)

    @classmethod
    def _checked(cls, path: Path) -> ResultsCache:
        cache = cls(path)
        assert cache._db is not None
        try:
            cache._db.execute("SELECT COUNT(*) FROM completions").fetchone()
            with cache._db:  # can we write?
                cache._db.execute("DELETE FROM completions WHERE key = ''")
        except BaseException:
            cache.close()
            raise
        return cache

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_completion(self, key: str) -> Completion | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens FROM completions WHERE key = ?",
                (key,),
            ).fetchone()
        return Completion(row[0], row[1] or 0, row[2] or 0) if row else None

    def put_completion(self, key: str, completion: Completion) -> None:
        if self._db is None:
            return
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    completion.text,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    time.time(),
                ),
            )

    def get_transcript(self, key: str) -> tuple[list[TranscriptSegment], str | None] | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT segments, language FROM transcripts WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return [TranscriptSegment(*item) for item in json.loads(row[0])], row[1]

    def put_transcript(
        self, key: str, segments: Sequence[TranscriptSegment], language: str | None
    ) -> None:
        if self._db is None:
            return
        data = json.dumps([[s.start, s.end, s.text] for s in segments])
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?)",
                (key, data, language, time.time()),
            )

    def get_slides(self, key: str) -> tuple[Slide, ...] | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT slides, images FROM slide_sets WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        slides, at = [], 0
        for start, end, text, size in json.loads(row[0]):
            slides.append(Slide(start, end, text, bytes(row[1][at : at + size])))
            at += size
        return tuple(slides)

    def put_slides(self, key: str, slides: Sequence[Slide]) -> None:
        """A video's slides, once all are found (their images in one blob, in order)."""
        if self._db is None:
            return
        data = json.dumps([[s.start, s.end, s.text, len(s.image)] for s in slides])
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO slide_sets VALUES (?, ?, ?, ?)",
                (key, data, b"".join(s.image for s in slides), time.time()),
            )

    def get_chunk(self, key: str) -> ChunkRecord | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT segments, loud, speech, covered FROM chunks WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        segments = tuple(TranscriptSegment(*item) for item in json.loads(row[0]))
        return ChunkRecord(segments, row[1], row[2], row[3])

    def put_chunk(self, key: str, record: ChunkRecord) -> None:
        if self._db is None:
            return
        data = json.dumps([[s.start, s.end, s.text] for s in record.segments])
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    data,
                    record.loud_seconds,
                    record.speech_seconds,
                    record.covered,
                    time.time(),
                ),
            )

    def chunk_store(self, transcript: str) -> CachedChunks:
        """The chunks of one transcription (``transcript``: its ``transcript_key``)."""
        return CachedChunks(self, transcript)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class CachedChunks:
    """A ``ChunkStore`` in the results cache, for one audio and one set of options."""

    def __init__(self, cache: ResultsCache, transcript: str) -> None:
        self._cache, self._transcript = cache, transcript

    @property
    def transcript(self) -> str:
        """The ``transcript_key`` these chunks belong to: another process (a Ray actor)
        opens the same chunks in its own cache with it."""
        return self._transcript

    def _key(self, offset: float, seconds: float) -> str:
        return _digest("chunk", self._transcript, round(offset, 3), round(seconds, 3))

    def get(self, offset: float, seconds: float) -> ChunkRecord | None:
        return self._cache.get_chunk(self._key(offset, seconds))

    def put(self, offset: float, seconds: float, record: ChunkRecord) -> None:
        self._cache.put_chunk(self._key(offset, seconds), record)
