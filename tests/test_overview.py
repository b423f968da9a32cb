"""Summaries people read: the overview of long videos, the summary language, the video's
context in every prompt, chapters beside fixed sections, a page with contents."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.fakes import RecordingProvider
from tests.support.server import LoopbackServer
from tests.support.videos import serve_video, two_hour_video
from tests.test_engine import _feed, _run, _segments
from yttl.summarize import prompts
from yttl.summarize.engine import EngineOptions, SummaryEngine
from yttl.summarize.sections import assign_segments, plan_fixed


def test_the_overview_is_made_from_the_hours_once_the_last_is_done() -> None:
    provider = RecordingProvider()
    hours, engine, _ = _run(provider, plan_fixed(7200), _segments(7200), EngineOptions(8))
    assert isinstance(engine, SummaryEngine)
    overview = [c for c in provider.calls if c.kind == "overview"]
    assert len(overview) == 1 and engine.overview
    assert all(h.summary in overview[0].user for h in hours)  # from the hour summaries...
    assert "word1." not in overview[0].user  # ...never from the raw transcript
    last_hour = max(c.end for c in provider.calls if c.kind == "hour")
    assert overview[0].start >= last_hour
    one_hour = RecordingProvider()
    _run(one_hour, plan_fixed(3600), _segments(3600), EngineOptions(8))
    assert not [c for c in one_hour.calls if c.kind == "overview"]
    off = RecordingProvider()
    _run(off, plan_fixed(7200), _segments(7200), EngineOptions(8, overview=False))
    assert not [c for c in off.calls if c.kind == "overview"]


def test_every_prompt_carries_the_language_and_the_videos_context() -> None:
    context = prompts.PromptContext("The Brain", "Crash Course", "Episode one. " * 80, "German")
    for messages in (prompts.section_messages("text", None, context, ["Intro", "Memory"]),
                     prompts.hour_messages(["a", "b"], context),
                     prompts.merge_messages(["a", "b"], context),
                     prompts.overview_messages(["a", "b"], context)):  # fmt: skip
        assert messages[0].content.endswith("Write in German, whatever the language of the "
                                            "text given.")  # fmt: skip
        assert "transcript's language" not in messages[0].content
        assert messages[1].content.startswith("Video: The Brain (Crash Course)\nAbout the video:")
        assert len(messages[1].content.split("\n")[1]) <= prompts.DESCRIPTION_CHARS + 20
    assert "Chapters in this part: Intro; Memory" in prompts.section_messages(
        "text", None, context, ["Intro", "Memory"])[1].content  # fmt: skip


def _args(server: LoopbackServer, source: Path, out: Path, *extra: str) -> list[str]:
    return [str(source), "-lp", "openai", "-ou", server.openai_base_url, "-o", str(out),
            "--no-open", "-f", "json", "-f", "html", "-f", "md", *extra]  # fmt: skip


@pytest.mark.corpus
def test_the_summary_language_reaches_every_prompt_the_cache_key_and_the_page(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    first = run_yttl(_args(server, info, tmp_path / "de", "--summary-language", "German"),
                     clean_env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    german = len(server.state.calls)
    assert german and all("Write in German" in c.system for c in server.state.calls)
    assert all("Crash Course" in c.user for c in server.state.calls)  # title and channel
    page = (tmp_path / "de" / "vo4pMVb0R6M.html").read_text()
    assert '<html lang="de">' in page
    again = run_yttl(_args(server, info, tmp_path / "fr", "--summary-language", "fr"), clean_env)
    assert again.returncode == 0, again.stderr
    assert len(server.state.calls) == 2 * german  # another language is not a cache hit
    assert '<html lang="fr">' in (tmp_path / "fr" / "vo4pMVb0R6M.html").read_text()


@pytest.mark.corpus
def test_a_long_video_opens_with_the_overview_and_contents_and_fixed_sections_name_chapters(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = two_hour_video(server, tmp_path)
    doc = json.loads(info.read_text())
    doc["chapters"] = [{"start_time": 0, "end_time": 400, "title": "Opening"},
                       {"start_time": 400, "end_time": 7200, "title": "The rest"}]  # fmt: skip
    info.write_text(json.dumps(doc))
    result = run_yttl(_args(server, info, tmp_path / "o"), clean_env)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "o" / "twohour-12.json").read_text())
    assert out["summary"] and len(server.state.calls) == 27
    assert out["hours"][0]["sections"][1]["chapters"] == ["Opening", "The rest"]
    assert any("Chapters in this part: Opening; The rest" in c.user for c in server.state.calls)
    page = (tmp_path / "o" / "twohour-12.html").read_text()
    assert page.index('class="overview"') < page.index('class="toc"') < page.index('id="hour-1"')
    assert '<a href="#hour-2">Hour 2</a>' in page
    markdown = (tmp_path / "o" / "twohour-12.md").read_text()
    assert markdown.index("## Overview") < markdown.index("## Contents")
    assert "- [Hour 2](#hour-2) (1:00:00)" in markdown and '<a id="hour-2"></a>' in markdown


def test_the_description_gives_way_in_a_small_window() -> None:
    context = prompts.PromptContext("The Brain", "Crash Course", "An episode about memory. " * 20)
    seen = {}
    for window in (1024, 100_000):
        provider = RecordingProvider(context_tokens=window)
        plan = plan_fixed(600)
        engine = SummaryEngine(provider, EngineOptions(4, max_output_tokens=64),
                               prompt_context=context)  # fmt: skip
        asyncio.run(engine.run(plan, _feed(assign_segments(_segments(600), plan))))
        seen[window] = all("About the video:" in c.user for c in provider.calls)
        assert all("Video: The Brain (Crash Course)" in c.user for c in provider.calls)
    assert seen == {1024: False, 100_000: True}
