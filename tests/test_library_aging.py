"""The library as it ages: a schema version with migrations, an index that is built when
it can be, search in scripts without spaces, imports that go past a bad file, citations
checked against what the model was given. Real SQLite files, the real yttl command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from yttl.ask import Excerpt, check_citations
from yttl.errors import InputError
from yttl.library import SCHEMA_VERSION, Library
from yttl.models import TranscriptSegment, VideoInfo

# The library as the first release wrote it (schema 1, user_version 0): kept verbatim so
# that the migration is tested against a real old file, not against today's code.
FIRST_SCHEMA = """
CREATE TABLE videos (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT, duration REAL, source TEXT,
    extractor TEXT, provider TEXT, model TEXT, prompt_version TEXT, transcript_source TEXT,
    language TEXT, outputs TEXT NOT NULL, document TEXT NOT NULL, recorded REAL NOT NULL);
CREATE TABLE sections (
    id INTEGER PRIMARY KEY, video_id TEXT NOT NULL, hour INTEGER NOT NULL,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL, url TEXT,
    title TEXT NOT NULL, summary TEXT NOT NULL, transcript TEXT NOT NULL, status TEXT);
CREATE INDEX sections_video ON sections(video_id, start);
CREATE TABLE segments (
    video_id TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, text TEXT NOT NULL);
CREATE INDEX segments_video ON segments(video_id, start);
CREATE VIRTUAL TABLE sections_fts USING fts5(
    title, summary, transcript, content='sections', content_rowid='id',
    tokenize='porter unicode61');
CREATE TRIGGER sections_added AFTER INSERT ON sections BEGIN
    INSERT INTO sections_fts(rowid, title, summary, transcript)
    VALUES (new.id, new.title, new.summary, new.transcript);
END;
CREATE TRIGGER sections_removed AFTER DELETE ON sections BEGIN
    INSERT INTO sections_fts(sections_fts, rowid, title, summary, transcript)
    VALUES ('delete', old.id, old.title, old.summary, old.transcript);
END;
"""


def _document(video_id: str, summaries: list[str], title: str = "A talk") -> dict[str, Any]:
    url = f"https://www.youtube.com/watch?v={video_id}"
    sections = [{"index": i, "start": i * 300.0, "end": (i + 1) * 300.0, "summary": text,
                 "url": f"{url}&t={i * 300}s", "status": "ok"}
                for i, text in enumerate(summaries)]  # fmt: skip
    return {"video": {"id": video_id, "title": title, "url": url, "extractor": "youtube",
                      "source": "url", "duration": 300.0 * len(summaries)},
            "hours": [{"index": 0, "start": 0.0, "end": 300.0 * len(summaries), "summary": "",
                       "sections": sections}]}  # fmt: skip


def _old_library(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_SCHEMA)
        document = _document("old1", ["How the hippocampus replays the day.", "Sleep."])
        db.execute("INSERT INTO videos VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   ("old1", "A talk", document["video"]["url"], 600.0, "url", "youtube", "openai",
                    "m", "1", "captions", "en", "{}", json.dumps(document), 0.0))  # fmt: skip
        for section in document["hours"][0]["sections"]:
            db.execute("INSERT INTO sections (video_id, hour, idx, start, end, url, title, "
                       "summary, transcript, status) VALUES ('old1', 0, ?, ?, ?, ?, '', ?, '', "
                       "'ok')", (section["index"], section["start"], section["end"],
                                 section["url"], section["summary"]))  # fmt: skip


def test_a_library_of_the_first_schema_opens_and_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    _old_library(path)
    library = Library(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [h.video_id for h in library.search("hippocampus")] == ["old1"]  # kept, indexed
    library.record_document(_document("old1", ["Replaced: the cortex keeps it."]))
    library.record_document(_document("jp1", ["東京の天気は晴れです。"]))
    assert [h.video_id for h in library.search("cortex")] == ["old1"]
    assert library.search("hippocampus") == []  # the old sections left the index too
    assert [h.video_id for h in library.search("東京")] == ["jp1"]


def test_a_newer_library_is_refused_with_one_line(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    path = tmp_path / "library.sqlite"
    Library(path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(InputError, match="newer yttl"):
        Library(path)
    result = run_yttl(["list", "--library-path", str(path)], clean_env)
    assert result.returncode == 2
    assert result.stderr.startswith("yttl: error:") and "newer yttl" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 2


def test_a_library_written_without_fts5_gets_its_index_when_reopened_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "library.sqlite"
    Library(path, full_text=False).record_document(_document("a", ["Memory and sleep."]))
    library = Library(path)  # this SQLite has FTS5
    assert library.fts
    library.record_document(_document("a", ["Memory, sleep and dreams."]))  # was "malformed"
    library.record_document(_document("b", ["Attention."]))
    assert [h.video_id for h in library.search("dreams")] == ["a"]
    assert [h.video_id for h in library.search("attention")] == ["b"]


@pytest.mark.parametrize("full_text", [True, False])
def test_words_in_chinese_and_japanese_are_found(tmp_path: Path, full_text: bool) -> None:
    library = Library(tmp_path / "library.sqlite", full_text=full_text)
    library.record_document(
        _document("jp", ["東京の天気は晴れです。", "大阪では雨が降っています。"])
    )
    library.record_document(_document("zh", ["我们今天讨论记忆和睡眠。"]))
    library.record_document(_document("en", ["Tokyo weather, in English."]))
    hits = library.search("東京")
    assert [(h.video_id, h.start) for h in hits] == [("jp", 0.0)]
    assert "東京" in hits[0].snippet
    assert [h.video_id for h in library.search("睡眠")] == ["zh"]
    assert [h.video_id for h in library.search("大阪 雨")] == ["jp"]
    assert library.search("京都") == []  # characters of it occur, the word does not
    asked = library.search("東京の天気はどうですか", any_word=True)  # a question, for ask
    assert asked and asked[0].video_id == "jp"


def test_library_import_goes_past_files_it_cannot_read_and_names_them(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "good.json").write_text(json.dumps(_document("good", ["Memory."])))
    (runs / "also.json").write_text(json.dumps(_document("also", ["Sleep."])))
    (runs / "torn.json").write_text('{"video": {"id": "x"')
    (runs / "odd.json").write_text(json.dumps({"video": {"id": "x"}, "hours": [{"x": 1}]}))
    (runs / "gone.json").symlink_to(runs / "nowhere.json")
    (runs / "index.json").write_text(json.dumps({"schema": 1, "videos": []}))
    library = tmp_path / "library.sqlite"
    result = run_yttl(["library", "import", str(runs), "--library-path", str(library)], clean_env)
    assert result.returncode == 0, result.stderr
    assert "took in 2 video(s)" in result.stderr
    for name in ("torn.json", "odd.json", "gone.json"):
        assert name in result.stderr
    assert "index.json" not in result.stderr  # not a run's output: passed over quietly
    assert sorted(v["id"] for v in Library(library).videos()) == ["also", "good"]
    missing = run_yttl(["library", "import", str(tmp_path / "nope"), "--library-path",
                        str(library)], clean_env)  # fmt: skip
    assert missing.returncode == 2 and "no such folder" in missing.stderr


def test_empty_library_commands_say_so_and_where(tmp_path: Path, clean_env: dict[str, str]) -> None:
    library = tmp_path / "library.sqlite"
    listed = run_yttl(["list", "--library-path", str(library)], clean_env)
    assert listed.returncode == 0 and "is empty" in listed.stderr and str(library) in listed.stderr
    found = run_yttl(["search", "memory", "--json", "--library-path", str(library)], clean_env)
    assert found.returncode == 0 and json.loads(found.stdout) == []
    assert "is empty" in found.stderr


def test_every_usual_form_of_a_citation_is_kept_and_one_outside_the_excerpts_dropped() -> None:
    video = VideoInfo("abc", "A talk", "https://www.youtube.com/watch?v=abc", 3600.0,
                      "youtube", "url")  # fmt: skip
    excerpts = [Excerpt(300.0, 600.0, "https://www.youtube.com/watch?v=abc&t=300s", "…"),
                Excerpt(1800.0, 2100.0, "https://www.youtube.com/watch?v=abc&t=1800s", "…")]  # fmt: skip
    text = ("It forms early [05:00], is kept [0:05:00] and replayed [5:20]; later [30:00] "
            "and [0:31:15]. Invented: [59:00].")  # fmt: skip
    cited, dropped = check_citations(text, video, excerpts)
    assert [c.start for c in cited] == [300.0, 320.0, 1800.0, 1875.0]
    assert cited[1].url.endswith("t=320s") and cited[0].url.endswith("t=300s")
    assert all(c.video_id == "abc" for c in cited) and cited[1].end == 600.0
    assert dropped == ["[59:00]"]


def test_recording_a_transcript_keeps_its_segments(tmp_path: Path) -> None:
    library = Library(tmp_path / "library.sqlite")
    segments = [TranscriptSegment(10, 20, "東京の天気"), TranscriptSegment(320, 330, "sleep")]
    library.record_document(_document("s", ["one", "two"]), segments)
    assert [s.text for s in library.transcript("s", 0, 300)] == ["東京の天気"]
    assert [h.video_id for h in library.search("天気")] == ["s"]


def test_ask_in_japanese_reaches_the_model(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = tmp_path / "library.sqlite"
    Library(library).record_document(_document("jp", ["東京の天気は晴れです。"]))
    server.state.reply = lambda messages: "晴れです [0:00]."
    result = run_yttl(["ask", "jp", "東京の天気は?", "--json", "--library-path", str(library),
                       "-lp", "openai", "-ou", server.openai_base_url], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["found"] and len(server.state.calls) == 1
    assert answer["citations"][0]["start"] == 0.0
