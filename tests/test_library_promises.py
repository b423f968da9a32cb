"""What the library promises (DESIGN §3): a record is never made poorer. Importing a run's
own JSON outputs again, a ``--transcript-only`` run, a failed run or one with fewer formats
never replaces a transcript, summaries or vectors with less; a newer complete run replaces
an older one. Through the real command, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer, default_reply
from tests.support.synthetic import synthetic_video
from yttl.library import Library

SAID_ONLY = "puzzles"  # in the captions of the sleep part, in no summary


@dataclass(frozen=True)
class Made:
    """A video run once into a library, its outputs, and the server it came from."""

    server: LoopbackServer
    info: Path
    out: Path
    library: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    folder = tmp_path_factory.mktemp("made")
    env = _env(folder)
    with LoopbackServer() as server:
        info = synthetic_video(server, folder, "talk", seconds=900, lecture=True)
        one = Made(server, info, folder / "out", folder / "library.sqlite")
        _run(one, one.out, one.library, env)
        yield one


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    for name in ("CONFIG", "CACHE", "DATA", "STATE"):
        env[f"XDG_{name}_HOME"] = str(folder / name.lower())
    env.update({"OPENAI_API_KEY": "sk-loopback-test-key-0123456789", "YTTL_EMBED": "false"})
    return env


def _copy(made: Made, tmp_path: Path) -> Path:
    library = tmp_path / "library.sqlite"
    shutil.copy(made.library, library)
    return library


def _run(made: Made, out: Path, library: Path, env: dict[str, str], *extra: str) -> None:
    result = run_yttl([str(made.info), "-lp", "openai", "-ou", made.server.openai_base_url,
                       "-o", str(out), "-f", "json", "--no-open", "--library-path",
                       str(library), *extra], env)  # fmt: skip
    assert result.returncode in (0, 1, 3), result.stderr


def _summaries(library: Path) -> list[tuple[str, str]]:
    document = Library(library).document("talk")
    return [(s["status"], s["summary"]) for h in document["hours"] for s in h["sections"]]


def test_importing_a_runs_own_json_outputs_keeps_the_transcript(
    made: Made, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The default outputs write no srt beside the JSON: the import must not take the
    stored transcript away (words said stay searchable, the transcript stays readable)."""
    library = _copy(made, tmp_path)
    assert Library(library).search(SAID_ONLY)  # said, and found
    spoken = len(Library(library).transcript("talk"))
    assert spoken > 0 and not list(made.out.glob("*.srt"))
    result = run_yttl(["library", "import", str(made.out), "--library-path", str(library),
                       "--no-embed"], clean_env)  # fmt: skip
    assert result.returncode == 0 and "took in 1 video" in result.stderr, result.stderr
    found = run_yttl(["search", SAID_ONLY, "--mode", "words", "--json", "--library-path",
                      str(library)], clean_env)  # fmt: skip
    assert json.loads(found.stdout), "the import lost what was said"
    assert len(Library(library).transcript("talk")) == spoken


def test_a_transcript_only_run_keeps_the_summaries(
    made: Made, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = _copy(made, tmp_path)
    before = _summaries(library)
    assert len(before) == 3 and all(summary for _, summary in before)
    _run(made, tmp_path / "again", library, clean_env, "--transcript-only")
    listed = run_yttl(["list", "--json", "--library-path", str(library)], clean_env)
    video = json.loads(listed.stdout)[0]
    assert video["sections"] == 3 and video["model"], video
    assert _summaries(library) == before
    assert Library(library).search(SAID_ONLY)  # the transcript is still there too


def test_a_failed_run_keeps_the_complete_record_and_a_newer_complete_run_replaces_it(
    made: Made, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = _copy(made, tmp_path)
    before = _summaries(library)
    refused = (400, {}, b'{"error": {"message": "refused", "code": "invalid_request"}}')
    state = made.server.state
    state.fault = lambda call: refused
    try:
        _run(made, tmp_path / "failed", library, clean_env, "--no-cache")
        assert _summaries(library) == before
        state.fault = None
        state.reply = lambda messages: "A newer summary of the part."
        _run(made, tmp_path / "newer", library, clean_env, "--no-cache")
    finally:
        state.fault, state.reply = None, default_reply
    assert _summaries(library) == [("ok", "A newer summary of the part.")] * 3


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


def test_an_import_passes_over_malformed_json_and_takes_the_rest(
    made: Made, tmp_path: Path
) -> None:
    """Hand-edited or foreign JSON beside good outputs: each is named and passed over
    (nothing stored to break ``yttl show`` later), the good one is taken in."""
    env = _env(tmp_path)
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = json.loads((made.out / "talk.json").read_text())
    (folder / "talk.json").write_text(json.dumps(good))
    spoil = {
        "summary-list": lambda d: d["hours"][0]["sections"][0].update(summary=["a", "b"]),
        "id-object": lambda d: d["video"].update(id={"x": 1}),
        "start-text": lambda d: d["hours"][0]["sections"][0].update(start="zero"),
        "duration-text": lambda d: d["video"].update(duration="long"),
    }
    for name, change in spoil.items():
        document = json.loads(json.dumps(good))
        document["video"]["id"] = name
        change(document)
        (folder / f"{name}.json").write_text(json.dumps(document))
    library = tmp_path / "library.sqlite"
    result = run_yttl(["library", "import", str(folder), "--library-path", str(library)], env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "took in 1 video(s)" in result.stderr, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == len(spoil), result.stderr
    assert [v["id"] for v in Library(library).videos()] == ["talk"]
    for command in (["show", "talk"], ["list"]):
        shown = run_yttl([*command, "--library-path", str(library)], env)
        assert shown.returncode == 0, shown.stderr
