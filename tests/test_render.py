from __future__ import annotations

import json
from pathlib import Path

import pytest

from yttl.models import (
    Failure,
    HourSummary,
    RunResult,
    Section,
    SectionSummary,
    Transcript,
    TranscriptSegment,
    VideoInfo,
)
from yttl.render import output_stem, render, write_outputs
from yttl.render.links import format_clock, timestamp_url

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _video(**changes: object) -> VideoInfo:
    base: dict[str, object] = dict(id="abc123", title=HOSTILE, url="https://www.youtube.com/watch?v=abc123",
                duration=4000.0, extractor="Youtube", source="url")  # fmt: skip
    base.update(changes)
    return VideoInfo(**base)  # type: ignore[arg-type]


def _result(video: VideoInfo | None = None) -> RunResult:
    video = video or _video()
    s1 = SectionSummary(Section(0, 0, 0, 300), HOSTILE, "ok")
    s2 = SectionSummary(Section(0, 1, 300, 3600), "", "failed", error="server error <500>")
    s3 = SectionSummary(Section(1, 0, 3600, 4000, title="Q&A <live>"), "", "empty")
    hours = (
        HourSummary(0, 0, 3600, "hour <b>one</b>", "ok", (s1, s2), ("1.2",)),
        HourSummary(1, 3600, 4000, "", "ok", (s3,)),
    )
    transcript = Transcript(
        (TranscriptSegment(1, 2, "</p><script>x()</script>"),), "captions", "en"
    )
    return RunResult(video, transcript, hours, (Failure("section 1.2", "server", "boom"),),
                     provider="openai", model="m")  # fmt: skip


def test_html_escapes_everything_that_came_from_outside() -> None:
    html = render(_result(), "html")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "hour &lt;b&gt;one&lt;/b&gt;" in html
    assert "Q&amp;A &lt;live&gt;" in html and "server error &lt;500&gt;" in html
    assert "</p><script>x()" not in html
    assert '<meta name="viewport"' in html


def test_javascript_urls_never_reach_an_href() -> None:
    html = render(_result(_video(url="javascript:alert(1)", extractor="generic")), "html")
    assert 'href="javascript:' not in html


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "https://www.youtube.com/watch?v=abc123&t=3725s"),
        ({"extractor": "twitch:vod", "url": "https://www.twitch.tv/videos/1"},
         "https://www.twitch.tv/videos/1?t=1h2m5s"),
        ({"extractor": "file", "source": "file", "url": "file:///tmp/a%20b.mp4"},
         "file:///tmp/a%20b.mp4#t=3725"),
        ({"extractor": "Vimeo", "url": "https://vimeo.com/1"}, "https://vimeo.com/1"),
    ],
)  # fmt: skip
def test_timestamp_links_per_site(changes: dict[str, object], expected: str) -> None:
    assert timestamp_url(_video(**changes), 3725.9) == expected


def test_clock_format() -> None:
    assert [format_clock(s) for s in (0, 59.9, 61, 3600, 36000 + 61)] == \
        ["0:00", "0:59", "1:01", "1:00:00", "10:01:01"]  # fmt: skip


def test_markdown_marks_failures_and_escapes() -> None:
    md = render(_result(), "md")
    assert "\\<script\\>" in md and "<script>" not in md
    assert "*Failed: server error \\<500\\>*" in md and "*No speech.*" in md
    assert "Missing sections: 1.2" in md
    assert "[1:00:00](<https://www.youtube.com/watch?v=abc123&t=3600s>)" in md


def test_json_follows_the_schema() -> None:
    doc = json.loads(render(_result(), "json"))
    assert set(doc) >= {"schema", "video", "transcript", "hours", "failures", "stats"}
    assert set(doc["video"]) == {"id", "title", "url", "duration", "extractor", "source"}
    section = doc["hours"][0]["sections"][1]
    assert section["status"] == "failed" and section["error"] == "server error <500>"
    assert doc["hours"][1]["sections"][0]["title"] == "Q&A <live>"
    assert "title" not in doc["hours"][0]["sections"][0]
    assert doc["failures"] == [{"where": "section 1.2", "category": "server", "message": "boom",
                                "attempts": 1}]  # fmt: skip


@pytest.mark.parametrize(
    ("video_id", "stem"),
    [("abc", "abc"), ("../../etc/passwd", "etc_passwd"), ("a/b\\c:d*e", "a_b_c_d_e"),
     ("...", "video"), ("x" * 300, "x" * 120), ("Ünïcode talk", "Ünïcode_talk")],
)  # fmt: skip
def test_output_names_are_sanitized(video_id: str, stem: str) -> None:
    assert output_stem(video_id) == stem


def test_outputs_are_written_atomically_and_only_where_asked(tmp_path: Path) -> None:
    result = _result(_video(id="../escape"))
    written = write_outputs(result, ["html", "json", "html"], tmp_path / "out")
    assert [p.name for p in written] == ["escape.html", "escape.json"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["escape.html", "escape.json"]
    assert not list(tmp_path.glob("*.tmp"))
