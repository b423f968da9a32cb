"""Which caption track: the preferred language, else the video's own, never a machine
translation over the original."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from yttl.models import CaptionTrack, VideoInfo
from yttl.sources.captions import choose_track


def _video(manual: list[str], automatic: list[str], language: str | None = None) -> VideoInfo:
    def tracks(langs: list[str], automatic: bool) -> tuple[CaptionTrack, ...]:
        return tuple(CaptionTrack(lang, ext, url=f"https://x/{lang}.{ext}", automatic=automatic)
                     for lang in langs for ext in ("vtt", "json3"))  # fmt: skip

    return VideoInfo("v", "t", "https://www.youtube.com/watch?v=v", 600.0, "youtube", "url",
                     subtitles=tracks(manual, False), automatic_captions=tracks(automatic, True),
                     language=language)  # fmt: skip


# YouTube lists an automatic track in every language it translates into; only -orig
# is the speech recognition of the original audio.
GERMAN_TALK = ["de-orig", "de", "en", "fr", "ja"]


@pytest.mark.parametrize(
    ("manual", "automatic", "language", "expected"),
    [
        ([], GERMAN_TALK, "de", ("de-orig", True)),  # not the English translation
        ([], GERMAN_TALK, None, ("de-orig", True)),  # the -orig track says what is spoken
        (["de"], GERMAN_TALK, "de", ("de", False)),  # the uploader's own subtitles first
        (["en"], GERMAN_TALK, "de", ("en", False)),  # real English subtitles are taken
        ([], ["en-orig", "en", "de"], "en", ("en-orig", True)),
        ([], ["en"], None, ("en", True)),  # no -orig at all: the plain track is the original
        (["de-DE"], [], "de", ("de-DE", False)),
        ([], [], None, None),
    ],
)
def test_the_track_in_the_preferred_language_else_the_videos_own(
    manual: list[str], automatic: list[str], language: str | None,
    expected: tuple[str, bool] | None,
) -> None:  # fmt: skip
    track = choose_track(_video(manual, automatic, language), "en")
    if expected is None:
        assert track is None
    else:
        assert track is not None and (track.language, track.automatic) == expected
        assert track.ext == "json3"


def test_the_switch_to_another_language_is_said_in_one_line(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    import asyncio

    from yttl.perf import PerformanceTracker
    from yttl.transcript import TranscriptOptions, caption_stream

    track = tmp_path / "talk.de.vtt"
    track.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nGuten Tag.\n")
    video = replace(_video([], [], "de"), subtitles=(CaptionTrack("de", "vtt", path=str(track)),))
    with caplog.at_level(logging.WARNING, logger="yttl"):
        asyncio.run(caption_stream(video, TranscriptOptions(language="en"), PerformanceTracker()))
    said = [r.getMessage() for r in caplog.records if "own de captions" in r.getMessage()]
    assert len(said) == 1 and "no en captions" in said[0]
