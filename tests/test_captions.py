from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.videos import YOUTUBE, load_info, video_ids
from yttl.errors import InputError
from yttl.models import TranscriptSegment
from yttl.render.subtitles import to_srt, to_vtt
from yttl.sources.captions import (
    choose_track,
    decode_caption_bytes,
    parse_json3,
    parse_srt,
    parse_vtt,
)
from yttl.sources.ytdlp import info_from_dict

ALL_IDS = video_ids()


def _words(segments: list[TranscriptSegment]) -> list[str]:
    return " ".join(s.text for s in segments).split()


@pytest.mark.corpus
# without the corpus, one placeholder: skipped with the corpus reason, not an empty set
@pytest.mark.parametrize("video_id", ALL_IDS or ["no-corpus"])
def test_every_real_track_parses_the_same_in_json3_and_vtt(video_id: str) -> None:
    json3 = parse_json3((YOUTUBE / video_id / "captions.en.json3").read_text())
    vtt = parse_vtt((YOUTUBE / video_id / "captions.en.vtt").read_text())
    assert len(json3) > 50
    assert _words(json3) == _words(vtt)
    duration = load_info(video_id)["duration"]
    for segments in (json3, vtt):
        starts = [s.start for s in segments]
        assert starts == sorted(starts)
        assert all(0 <= s.start <= s.end <= duration + 5 for s in segments)
        assert all(s.text and "<" not in s.text and "&amp;" not in s.text for s in segments)
        # overlaps are closed: each segment ends by the time the next begins
        assert all(a.end <= b.start for a, b in itertools.pairwise(segments))


def test_json3_window_events_newlines_and_offsets() -> None:
    track = {
        "wireMagic": "pb3",
        "events": [
            {"tStartMs": 0, "dDurationMs": 999999, "id": 1, "wpWinPosId": 1},
            {
                "tStartMs": 100,
                "dDurationMs": 2000,
                "wWinId": 1,
                "segs": [{"utf8": "hello"}, {"utf8": " world", "tOffsetMs": 400}],
            },
            {
                "tStartMs": 1500,
                "dDurationMs": 10,
                "wWinId": 1,
                "aAppend": 1,
                "segs": [{"utf8": "\n"}],
            },
            {"tStartMs": 2100, "dDurationMs": 3000, "segs": [{"utf8": "a &amp; b\nc"}]},
        ],
    }
    segments = parse_json3(json.dumps(track))
    assert [s.text for s in segments] == ["hello world", "a & b c"]
    assert segments[0].start == pytest.approx(0.1)
    assert segments[0].end == pytest.approx(2.1)


def test_youtube_rolling_vtt_keeps_each_line_once() -> None:
    text = (
        "\ufeffWEBVTT\r\nKind: captions\r\nLanguage: en\r\n\r\n"
        "00:00:00.000 --> 00:00:02.000 align:start position:0%\r\n"
        "so<00:00:00.500><c> today</c><00:00:01.000><c> we</c>\r\n\r\n"
        "00:00:02.000 --> 00:00:02.010 align:start position:0%\r\n"
        "so today we\r\n \r\n\r\n"
        "00:00:02.010 --> 00:00:04.000 align:start position:0%\r\n"
        "so today we\r\n"
        "talk<00:00:02.500><c> about</c> <i>memory</i> &lt;3\r\n"
    )
    segments = parse_vtt(text)
    assert _words(segments) == ["so", "today", "we", "talk", "about", "memory", "<3"]


def test_vtt_note_style_and_short_timestamps() -> None:
    text = (
        "WEBVTT\n\nNOTE a comment\nwith lines\n\nSTYLE\n::cue { color: red }\n\n"
        "1\n00:01.000 --> 00:03.500\n<v Roger>Hi &amp; bye</v>\n\n"
        "01:00:00.000 --> 01:00:01.000\nlate\n"
    )
    segments = parse_vtt(text)
    assert [(s.start, s.text) for s in segments] == [(1.0, "Hi & bye"), (3600.0, "late")]


def test_srt_with_indices_tags_and_crlf() -> None:
    text = (
        "1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> {\\an8}there\r\n\r\n"
        '2\r\n00:00:02,000 --> 00:00:04,000\r\n<font color="red">second</font>\r\nline\r\n'
    )
    segments = parse_srt(text)
    assert [s.text for s in segments] == ["Hello there", "second line"]
    assert segments[0].end == 2.0  # overlap closed


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (parse_json3, "{not json"),
        (parse_json3, '{"events": 5}'),
        (parse_json3, '{"events": [{"tStartMs": "x", "segs": [{"utf8": "a"}]}]}'),
        (parse_vtt, "00:00:01.000 --> 00:00:02.000\nno header\n"),
        (parse_srt, "this is not\nsubtitles at all\n"),
    ],
)
def test_malformed_tracks_raise_input_errors(parser: object, text: str) -> None:
    with pytest.raises(InputError, match="malformed"):
        parser(text)  # type: ignore[operator]


def test_non_utf8_and_bom_bytes_are_decoded() -> None:
    assert decode_caption_bytes("WEBVTT café".encode("cp1252")) == "WEBVTT café"
    assert decode_caption_bytes("\ufeffWEBVTT".encode()) == "WEBVTT"
    assert decode_caption_bytes("WEBVTT ü".encode("utf-16")) == "WEBVTT ü"


def test_an_enormous_line_survives() -> None:
    words = " ".join(f"word{i}" for i in range(200_000))
    segments = parse_srt(f"1\n00:00:00,000 --> 00:00:05,000\n{words}\n")
    assert len(segments[0].text.split()) == 200_000


def _texts(excluded: str = "") -> st.SearchStrategy[str]:
    return (
        st.text(
            alphabet=st.characters(
                codec="utf-8",
                exclude_categories=("Cc", "Cs", "Zl", "Zp"),
                exclude_characters=excluded,
            ),
            min_size=1,
            max_size=40,
        )
        .map(lambda t: " ".join(t.split()))
        .filter(lambda t: bool(t) and "-->" not in t)
    )


def _segments(raw: list[tuple[int, int, str]]) -> list[TranscriptSegment]:
    """Consecutive cues; at least 50 ms long (shorter repeated cues are YouTube flashes)."""
    start, segments = 0, []
    for gap, length, text in raw:
        start += gap
        segments.append(TranscriptSegment(start / 1000, (start + length) / 1000, text))
        start += length
    return segments


_cue_lists = st.lists(
    st.tuples(st.integers(0, 10_000_000), st.integers(50, 9000), _texts()), min_size=1, max_size=30
)


@given(_cue_lists)
def test_vtt_writer_round_trips_any_text_through_the_parser(
    raw: list[tuple[int, int, str]],
) -> None:
    segments = _segments(raw)
    parsed = parse_vtt(to_vtt(segments))
    assert [s.text for s in parsed] == [s.text for s in segments]
    assert [s.start for s in parsed] == [s.start for s in segments]


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000_000), st.integers(50, 9000), _texts(excluded="<>{}&\\")),
        min_size=1,
        max_size=30,
    )
)
def test_srt_writer_round_trips_plain_text_through_the_parser(
    raw: list[tuple[int, int, str]],
) -> None:
    segments = _segments(raw)
    parsed = parse_srt(to_srt(segments))
    assert [(s.start, s.end, s.text) for s in parsed] == [
        (s.start, s.end, s.text) for s in segments
    ]


@pytest.mark.corpus
def test_track_choice_follows_the_documented_order() -> None:
    info = load_info("vo4pMVb0R6M")
    video = info_from_dict(info, source="info_json")
    chosen = choose_track(video, "en")
    assert chosen is not None and not chosen.automatic and chosen.language == "en"
    assert chosen.ext == "json3"

    info["subtitles"] = {"en": [f for f in info["subtitles"]["en"] if f["ext"] != "json3"]}
    assert choose_track(info_from_dict(info, source="info_json"), "en").ext == "vtt"  # type: ignore[union-attr]

    info["subtitles"] = {"fr": info["subtitles"]["en"]}
    auto = choose_track(info_from_dict(info, source="info_json"), "en")
    assert auto is not None and auto.automatic and auto.language == "en-orig"

    info["automatic_captions"] = {"de": info["automatic_captions"]["de"]}
    assert choose_track(info_from_dict(info, source="info_json"), "en") is None
    assert choose_track(info_from_dict(info, source="info_json"), "fr") is not None


@pytest.mark.corpus
def test_regional_manual_subtitles_come_before_automatic() -> None:
    info = load_info("vo4pMVb0R6M")
    info["subtitles"] = {"en-GB": [{"ext": "srt", "url": "http://127.0.0.1:9/x.srt"}]}
    chosen = choose_track(info_from_dict(info, source="info_json"), "en")
    assert chosen is not None and chosen.language == "en-GB" and not chosen.automatic
