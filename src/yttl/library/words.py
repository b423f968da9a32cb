"""Words as the full-text index sees them, queries as FTS5 reads them, and the two ways
of finding sections: FTS5 ranked by bm25, or a plain scan where SQLite lacks FTS5."""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MARK", "Hit", "has_unspaced", "index_words", "mark_words", "phrase", "query_terms",
           "quote_query", "search_fts", "search_scan", "uncommon"]  # fmt: skip

# Scripts written without spaces between words: FTS5's unicode61 would take a whole run
# (a sentence) as one token. Each of their characters is indexed as a token instead,
# and a query's run becomes a phrase of characters, which matches it anywhere.
_FIRST_UNSPACED = "\u0e00"  # below this, no such script: Latin text never needs the pattern


@functools.cache
def _unspaced() -> re.Pattern[str]:
    """Compiled on first use: its character ranges take 5 ms, a third of ``yttl list``'s
    own start."""
    return re.compile(
        "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
        "\u0e00-\u0e7f\u3000-\u303f\uff66-\uff9f])"
    )


def has_unspaced(text: str) -> bool:
    """Whether ``text`` holds a script written without spaces between words."""
    return bool(text) and max(text) >= _FIRST_UNSPACED and _unspaced().search(text) is not None


def index_words(text: str | None) -> str:
    """Text as the full-text index sees it: unspaced scripts one character a token."""
    if not text:
        return ""
    return _unspaced().sub(r" \1 ", text) if has_unspaced(text) else text


WORD = re.compile(r"\w+", re.UNICODE)
MARK = ("**", "**")  # around the matched words in a snippet


def query_terms(text: str, *, any_word: bool = False) -> list[tuple[str, ...]]:
    """The words of ``text``, each as the tokens the index holds for it (a run of an
    unspaced script is a phrase of its characters); with ``any_word``, such a run gives
    each pair of neighbours instead, so that a question in Japanese finds the passages
    that share a word with it."""
    terms: list[tuple[str, ...]] = []
    for word in WORD.findall(text):
        tokens = tuple(index_words(word).split())
        if any_word and len(tokens) > 2 and has_unspaced(word):
            terms.extend(itertools.pairwise(tokens))
        else:
            terms.append(tokens)
    return list(dict.fromkeys(terms))


COMMON_SHARE = 0.02  # a word in more sections than this says little about any of them
COMMON_FLOOR = 20


def phrase(tokens: tuple[str, ...]) -> str:
    return '"' + " ".join(tokens) + '"'


Terms = list[tuple[str, ...]]


def uncommon(db: sqlite3.Connection, terms: Terms, *, any_word: bool,
             counts: dict[tuple[str, ...], int] | None = None) -> Terms:  # fmt: skip
    """The terms of a query less those in too many sections (``the``, ``de``, ``how``: in
    any language, by how often they occur, not by a list): they tell no section from
    another, and their long lists make every query slow. With ``any_word``, only terms
    that occur at all are kept (the first present one if all are common); without, a
    term that occurs nowhere stays (so that all words are still required)."""
    if len(terms) < 2:
        return terms
    total = db.execute("SELECT coalesce(max(id), 0) FROM sections").fetchone()[0]
    cap = max(COMMON_FLOOR, int(total * COMMON_SHARE))
    counts = {} if counts is None else counts  # one search asks twice: count each term once
    for term in terms:
        if term in counts:
            continue
        counts[term] = db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM sections_fts WHERE sections_fts MATCH ? "
            "LIMIT ?)", (phrase(term), cap),
        ).fetchone()[0]  # fmt: skip
    if not any_word:
        return [t for t in terms if counts[t] < cap] or terms
    present = [t for t in terms if counts[t] > 0]
    kept = [t for t in present if counts[t] < cap]
    return kept or present[:1] or terms  # all common: the first that occurs at all


def quote_query(text: str, *, any_word: bool = False) -> str:
    """User text as an FTS5 query: every word quoted (so ``-``, ``:``, ``"`` and ``*``
    are words' edges, never syntax), all of them required, or any of them."""
    phrases = [phrase(tokens) for tokens in query_terms(text, any_word=any_word)]
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


def search_fts(db: sqlite3.Connection, match: str, limit: int,
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


def search_scan(db: sqlite3.Connection, words: list[str], limit: int,
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


def mark_words(text: str, words: Sequence[str]) -> str:
    """The snippet with the words marked by plain search, for unspaced scripts."""
    plain = text.replace(MARK[0], "").replace(MARK[1], "")
    for word in words:
        plain = plain.replace(word, f"{MARK[0]}{word}{MARK[1]}")
    return plain
