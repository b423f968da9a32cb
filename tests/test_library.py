"""The library: recording runs (single, batch, import), search that lands on the moment,
and the commands that read it; real episodes through the real yttl command."""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.videos import serve_video, video_ids
from yttl.library import Library, quote_query


def _run(server: LoopbackServer, sources: list[Path], out: Path, library: Path,
         env: dict[str, str], *extra: str) -> None:  # fmt: skip
    result = run_yttl([*map(str, sources), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(out), "-f", "json", "--no-open", "--library-path",
                       str(library), *extra], env)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def recorded(server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]) -> Path:
    """A library of three real episodes, recorded by one batch run."""
    sources = [serve_video(server, vid, tmp_path) for vid in video_ids()[:3]]
    library = tmp_path / "library.sqlite"
    _run(server, sources, tmp_path / "out", library, clean_env)
    return library


def _words_in_one_section(library: Library) -> list[tuple[str, str, float]]:
    """Words whose stem occurs in exactly one section of the library (no other section
    has a word with the same first six letters, so stemming cannot blur it)."""
    with sqlite3.connect(library.path) as db:
        rows = db.execute("SELECT video_id, start, title || ' ' || summary || ' ' || transcript "
                          "FROM sections").fetchall()  # fmt: skip
    where: dict[str, set[tuple[str, float]]] = {}
    for video, start, text in rows:
        for word in set(re.findall(r"[a-z]+", text.lower())):
            where.setdefault(word[:6], set()).add((video, start))
    counts = Counter(w for _, _, text in rows for w in re.findall(r"[a-z]{8,}", text.lower()))
    return [(w, *next(iter(where[w[:6]]))) for w in sorted(counts)
            if len(where[w[:6]]) == 1 and counts[w] >= 2]  # fmt: skip


@pytest.mark.corpus
def test_every_video_of_a_batch_is_recorded_and_searchable(
    recorded: Path, clean_env: dict[str, str]
) -> None:
    library = Library(recorded)
    assert {v["id"] for v in library.videos()} == set(video_ids()[:3])
    rare = _words_in_one_section(library)
    assert len(rare) >= 20
    for word, video, start in rare[:: max(1, len(rare) // 40)]:  # ranking: always first
        best = library.search(word)[0]
        assert (best.video_id, best.start) == (video, start), word
        assert re.search(rf"\*\*{word[:6]}\w*\*\*", best.snippet.lower())  # marked (stemmed)
        assert "t=" in best.url  # the link lands on the moment
    hits = run_yttl(["search", "--library-path", str(recorded), "--json", "--limit", "3",
                     "psychology"], clean_env)  # fmt: skip
    assert hits.returncode == 0, hits.stderr
    found = json.loads(hits.stdout)
    assert 1 <= len(found) <= 3
    assert set(found[0]) == {"video_id", "title", "start", "end", "url", "snippet", "score"}
    assert found == sorted(found, key=lambda h: -h["score"])
    one = video_ids()[1]
    only = run_yttl(["search", "--library-path", str(recorded), "--json", "--video", one,
                     "psychology"], clean_env)  # fmt: skip
    assert {h["video_id"] for h in json.loads(only.stdout)} == {one}


@pytest.mark.corpus
@pytest.mark.parametrize("query", ['"unbalanced', "a - b", "title:freud", "psych*",
                                   "NEAR(freud", "AND OR NOT", "(((", "'; DROP TABLE"])  # fmt: skip
def test_any_user_text_is_a_query_never_a_syntax_error(recorded: Path, query: str) -> None:
    Library(recorded).search(query)  # no sqlite3.OperationalError, whatever it finds
    assert all(part.startswith('"') for part in quote_query(query).split())


@pytest.mark.corpus
def test_without_fts5_search_scans_and_still_finds(recorded: Path) -> None:
    scan = Library(recorded, full_text=False)
    word, video, start = _words_in_one_section(scan)[0]
    best = scan.search(word)[0]
    assert (best.video_id, best.start) == (video, start)


@pytest.mark.corpus
def test_list_show_and_a_rerun_replaces_the_entry(
    server: LoopbackServer, recorded: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    listed = run_yttl(["list", "--library-path", str(recorded), "--json"], clean_env)
    assert len(json.loads(listed.stdout)) == 3
    vid = video_ids()[0]
    shown = run_yttl(["show", vid, "--library-path", str(recorded)], clean_env)
    assert shown.returncode == 0 and shown.stdout.startswith("# ")
    missing = run_yttl(["show", "nope", "--library-path", str(recorded)], clean_env)
    assert missing.returncode == 2 and "no video 'nope'" in missing.stderr
    with sqlite3.connect(recorded) as db:
        before = db.execute("SELECT COUNT(*) FROM sections WHERE video_id = ?", (vid,)).fetchone()
    _run(server, [serve_video(server, vid, tmp_path)], tmp_path / "out2", recorded, clean_env)
    with sqlite3.connect(recorded) as db:
        after = db.execute("SELECT COUNT(*) FROM sections WHERE video_id = ?", (vid,)).fetchone()
        assert db.execute("SELECT COUNT(*) FROM videos").fetchone()[0] == 3
    assert before == after  # replaced, not added


@pytest.mark.corpus
def test_no_library_records_nothing_and_import_takes_earlier_outputs(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = tmp_path / "library.sqlite"
    sources = [serve_video(server, vid, tmp_path) for vid in video_ids()[:2]]
    _run(server, sources, tmp_path / "old", library, clean_env, "--no-library")
    assert not library.exists()
    taken = run_yttl(["library", "import", str(tmp_path / "old"), "--library-path",
                      str(library)], clean_env)  # fmt: skip
    assert taken.returncode == 0 and "took in 2 video(s)" in taken.stderr
    assert {v["id"] for v in Library(library).videos()} == set(video_ids()[:2])
    assert Library(library).search("summary words")  # the summaries of past runs are searchable


def _write_many(path: str, worker: int) -> None:
    from yttl.library import Library

    library = Library(Path(path))
    for n in range(15):
        document = {"video": {"id": f"w{worker}-{n}", "title": f"video {n}"},
                    "hours": [{"index": 0, "sections": [{"index": 0, "start": 0.0, "end": 300.0,
                                                         "summary": f"worker {worker} note {n}"}]}]}  # fmt: skip
        library.record_document(document)


def test_concurrent_writers_never_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    Library(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(path), w)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM videos").fetchone()[0] == 45
    assert len(Library(path).search("worker note", limit=100)) == 45


def _answer_with_a_citation(messages: list[dict[str, str]]) -> str:
    """A model that follows the instructions: cite the first excerpt, or say it is not there."""
    user = messages[-1]["content"]
    if "dinosaur" in user.split("Question:")[-1]:
        return "NOT_IN_VIDEO"
    times = re.findall(r"^\[((?:\d+:)?\d{1,2}:\d{2})\]", user.split("Excerpts:")[1], re.M)
    return f"It is explained there [{times[0]}]."


@pytest.mark.corpus
def test_ask_answers_from_the_sections_that_bear_on_it_with_linked_citations(
    server: LoopbackServer, recorded: Path, clean_env: dict[str, str]
) -> None:
    library = Library(recorded)
    word, video, _ = _words_in_one_section(library)[0]
    server.state.calls.clear()
    server.state.reply = _answer_with_a_citation
    args = ["ask", video, f"what is said about {word}?", "--library-path", str(recorded),
            "-lp", "openai", "-ou", server.openai_base_url, "--json"]  # fmt: skip
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["found"] and answer["citations"]
    assert len(server.state.calls) == 1
    prompt = server.state.calls[0].user
    assert word in prompt.lower()  # the section that holds the word was retrieved
    assert all(c["url"].startswith("https://") and "t=" in c["url"] for c in answer["citations"])

    absent = run_yttl(["ask", video, "what about the dinosaur?", *args[3:]], clean_env)
    assert absent.returncode == 0 and json.loads(absent.stdout)["found"] is False
    assert "does not seem to say" in json.loads(absent.stdout)["answer"]
    calls = len(server.state.calls)
    nothing = run_yttl(["ask", video, "xylophone quasar", *args[3:]], clean_env)
    assert json.loads(nothing.stdout)["found"] is False
    assert len(server.state.calls) == calls  # no part matches: no call, no guess
