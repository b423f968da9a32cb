"""The library's SQLite schema and its migrations (``PRAGMA user_version``).

Each version's changes are applied in order, in one transaction, to a file of any older
version; a file of a newer version is refused. The full-text index is (re)built whenever
it is missing or was made the old way, so a library first written where SQLite lacked
FTS5 gets one where it has it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from yttl.errors import InputError

__all__ = ["SCHEMA_VERSION", "fts5_available", "migrate"]

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
SCHEMA_VERSION = 7
"""1: the first library (``user_version`` 0 in its files); 2: words of Chinese, Japanese
and Korean indexed one character each, so that a word within a run of them is found;
3: a video's channel, date and status, and the jobs of ``yttl serve``; 4: vectors, for
search by meaning; 5: the library's own settings (its embedding model), a mark on a video
whose vectors are older than its record, and one name for OpenAI's embeddings; 6: slides,
their text searchable; 7: chat threads and their messages."""
VERSION_5 = """
CREATE TABLE IF NOT EXISTS library_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
ALTER TABLE videos ADD COLUMN vectors_stale INTEGER NOT NULL DEFAULT 0;
UPDATE vectors SET model = 'openai:' || substr(model, 9) WHERE model LIKE 'chatgpt:%';
"""
VERSION_6 = """
CREATE TABLE IF NOT EXISTS slides (
    id INTEGER PRIMARY KEY, video_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    url TEXT, text TEXT NOT NULL, image TEXT);
CREATE INDEX IF NOT EXISTS slides_video ON slides(video_id, start);
"""
SLIDES_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS slides_fts USING fts5(
    text, content='slides', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS slides_added AFTER INSERT ON slides BEGIN
    INSERT INTO slides_fts(rowid, text) VALUES (new.id, yttl_words(new.text));
END;
CREATE TRIGGER IF NOT EXISTS slides_removed AFTER DELETE ON slides BEGIN
    INSERT INTO slides_fts(slides_fts, rowid, text) VALUES ('delete', old.id, yttl_words(old.text));
END;
INSERT INTO slides_fts(rowid, text) SELECT id, yttl_words(text) FROM slides;
"""
VERSION_7 = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    video_ids TEXT NOT NULL, all_videos INTEGER NOT NULL, title TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chats_updated ON chats(updated);
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY, chat_id TEXT NOT NULL, created REAL NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, citations TEXT, sources TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS chat_messages_chat ON chat_messages(chat_id, id);
"""
VERSION_4 = """
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY, video_id TEXT NOT NULL, kind TEXT NOT NULL, start REAL NOT NULL,
    end REAL NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS vectors_video ON vectors(video_id, model);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('vectors', 0);
CREATE TRIGGER IF NOT EXISTS vectors_added AFTER INSERT ON vectors BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'vectors';
END;
CREATE TRIGGER IF NOT EXISTS vectors_removed AFTER DELETE ON vectors BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'vectors';
END;
"""
VERSION_3 = """
ALTER TABLE videos ADD COLUMN channel TEXT;
ALTER TABLE videos ADD COLUMN upload_date TEXT;
ALTER TABLE videos ADD COLUMN status TEXT;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, status TEXT NOT NULL,
    sources TEXT NOT NULL, options TEXT NOT NULL, videos TEXT NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
CREATE INDEX IF NOT EXISTS videos_recorded ON videos(recorded);
"""


def fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.probe USING fts5(x)")
        db.execute("DROP TABLE temp.probe")
        return True
    except sqlite3.OperationalError:
        return False


def migrate(db: sqlite3.Connection, path: Path, fts: bool) -> None:
    """Bring the file at ``path`` to ``SCHEMA_VERSION`` in place, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(
                f"the library at {path} was made by a newer yttl (schema "
                f"{version}; this one reads up to {SCHEMA_VERSION})",
                hint="upgrade yttl, or give another library with --library-path",
            )
        run_script(db, SCHEMA)
        has_index = (
            db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sections_fts'").fetchone()
            is not None
        )
        if fts and (not has_index or version < 2):
            for script in (FTS_DROP, FTS_SCHEMA, FTS_FILL):
                run_script(db, script)
            # titles weigh most, then summaries, then the transcript
            db.execute(
                "INSERT INTO sections_fts(sections_fts, rank) "
                "VALUES ('rank', 'bm25(4.0, 2.0, 1.0)')"
            )
        if version < 3:
            run_script(db, VERSION_3)
        if version < 4:
            run_script(db, VERSION_4)
        if version < 5:
            run_script(db, VERSION_5)
        if version < 6:
            run_script(db, VERSION_6)
        has_slides_index = (
            db.execute("SELECT 1 FROM sqlite_master WHERE name = 'slides_fts'").fetchone()
            is not None
        )
        if fts and not has_slides_index:
            run_script(db, SLIDES_FTS)
        if version < 7:
            run_script(db, VERSION_7)
        if version != SCHEMA_VERSION:
            import logging  # here: the library commands start without it

            logging.getLogger(__name__).info(
                "library %s: schema %d -> %d", path, version, SCHEMA_VERSION
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: ``executescript`` would commit the open transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
