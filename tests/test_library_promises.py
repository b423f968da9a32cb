"""What the library promises (DESIGN §3): a record is never made poorer. Importing a run's
own JSON outputs again, a ``--transcript-only`` run, a failed run or one with fewer formats
never replaces a transcript, summaries or vectors with less; a newer complete run replaces
an older one. Through the real command, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.library import Library

SAID_ONLY = "puzzles"  # in the captions of the sleep part, in no summary


def _run(server: LoopbackServer, info: Path, out: Path, library: Path, env: dict[str, str],
         *extra: str) -> None:  # fmt: skip
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                       str(out), "-f", "json", "--no-open", "--library-path", str(library),
                       *extra], env)  # fmt: skip
    assert result.returncode in (0, 1, 3), result.stderr


def _words(library: Path, env: dict[str, str], word: str) -> list[dict[str, object]]:
    result = run_yttl(["search", word, "--mode", "words", "--json", "--library-path",
                       str(library)], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    hits: list[dict[str, object]] = json.loads(result.stdout)
    return hits


def _listed(library: Path, env: dict[str, str]) -> dict[str, object]:
    result = run_yttl(["list", "--json", "--library-path", str(library)], env)
    assert result.returncode == 0, result.stderr
    videos: list[dict[str, object]] = json.loads(result.stdout)
    assert len(videos) == 1
    return videos[0]


def test_importing_a_runs_own_json_outputs_keeps_the_transcript(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The default outputs write no srt beside the JSON: the import must not take the
    stored transcript away (words said stay searchable, the transcript stays readable)."""
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)
    library, out = tmp_path / "library.sqlite", tmp_path / "out"
    _run(server, info, out, library, clean_env)
    assert _words(library, clean_env, SAID_ONLY)
    spoken = len(Library(library).transcript("talk"))
    assert spoken > 0
    result = run_yttl(["library", "import", str(out), "--library-path", str(library),
                       "--no-embed"], clean_env)  # fmt: skip
    assert result.returncode == 0 and "took in 1 video" in result.stderr, result.stderr
    assert _words(library, clean_env, SAID_ONLY), "the import lost what was said"
    assert len(Library(library).transcript("talk")) == spoken


def test_a_transcript_only_run_keeps_the_summaries(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)
    library, out = tmp_path / "library.sqlite", tmp_path / "out"
    _run(server, info, out, library, clean_env)
    before = _listed(library, clean_env)
    assert before["sections"] == 3 and before["model"]
    _run(server, info, tmp_path / "again", library, clean_env, "--transcript-only")
    after = _listed(library, clean_env)
    assert after["sections"] == 3 and after["model"] == before["model"], after
    shown = run_yttl(["show", "talk", "-f", "json", "--library-path", str(library)], clean_env)
    sections = [s for h in json.loads(shown.stdout)["hours"] for s in h["sections"]]
    assert all(s["summary"] for s in sections) and len(sections) == 3
    assert _words(library, clean_env, SAID_ONLY)  # the transcript is still there too


def test_a_failed_run_keeps_the_complete_record_and_a_newer_complete_run_replaces_it(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)
    library, out = tmp_path / "library.sqlite", tmp_path / "out"
    _run(server, info, out, library, clean_env)
    refused = (400, {}, b'{"error": {"message": "refused", "code": "invalid_request"}}')
    server.state.fault = lambda call: refused
    _run(server, info, tmp_path / "failed", library, clean_env, "--no-cache")
    kept = run_yttl(["show", "talk", "-f", "json", "--library-path", str(library)], clean_env)
    sections = [s for h in json.loads(kept.stdout)["hours"] for s in h["sections"]]
    assert [s["status"] for s in sections] == ["ok"] * 3 and all(s["summary"] for s in sections)
    server.state.fault = None
    server.state.reply = lambda messages: "A newer summary of the part."
    _run(server, info, tmp_path / "newer", library, clean_env, "--no-cache")
    newer = run_yttl(["show", "talk", "-f", "json", "--library-path", str(library)], clean_env)
    sections = [s for h in json.loads(newer.stdout)["hours"] for s in h["sections"]]
    assert sections and all(s["summary"] == "A newer summary of the part." for s in sections)


def test_the_merge_rule_part_by_part(tmp_path: Path) -> None:
    """Summaries: complete beats partial beats none, the newer on a tie; the transcript:
    the newer unless empty; slides and outputs kept; vectors marked, never dropped."""
    from yttl.library.merge import Stored, merge
    from yttl.models import TranscriptSegment

    def document(*summaries: str, slides: bool = False) -> dict[str, object]:
        sections = [{"index": i, "start": i * 60.0, "end": i * 60.0 + 60, "summary": s,
                     "status": "ok" if s else "failed"} for i, s in enumerate(summaries)]  # fmt: skip
        return {"video": {"id": "v", "title": "T"}, "hours": [{"index": 0, "sections": sections}],
                **({"slides": [{"at": 1.0}]} if slides else {})}  # fmt: skip

    said = [TranscriptSegment(0.0, 5.0, "words")]
    kept_file = tmp_path / "v.md"
    kept_file.write_text("x")
    old = Stored(document("a", "b", slides=True), said, {"md": str(kept_file)})
    partial = merge(old, Stored(document("c", ""), [], {"json": "/x/v.json"}))
    assert partial.document["hours"] == old.document["hours"] and partial.segments == said
    assert partial.outputs == {"md": str(kept_file), "json": "/x/v.json"}
    assert not partial.changed
    newer = merge(old, Stored(document("c", "d"), [], {}))
    assert newer.document["hours"][0]["sections"][0]["summary"] == "c"  # type: ignore[index]
    assert newer.document["slides"] and newer.segments == said and newer.changed
    none = merge(Stored(document("", ""), said, {}), Stored(document("", ""), [], {}))
    assert none.segments == said


def test_a_video_with_no_transcript_says_so_over_mcp(tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    import asyncio

    from mcp.client import Client

    from yttl.config import Settings
    from yttl.mcp_server import build_server

    library = tmp_path / "library.sqlite"
    Library(library).record_document({
        "video": {"id": "quiet", "title": "No transcript", "url": "https://x/quiet",
                  "source": "url"},
        "hours": [{"index": 0, "start": 0.0, "end": 60.0, "summary": "", "sections": [
            {"index": 0, "start": 0.0, "end": 60.0, "summary": "Sleep.", "status": "ok"}]}]})  # fmt: skip

    async def call() -> tuple[bool, str]:
        async with Client(build_server(Settings(library_path=str(library)))) as client:
            made = await client.call_tool("get_transcript", {"video_id": "quiet"})
            return bool(made.is_error), "".join(getattr(c, "text", "") for c in made.content)

    error, text = asyncio.run(call())
    assert error and "no transcript" in text, text
