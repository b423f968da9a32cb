"""Speech packed into the model's windows, and window text cut again at the pauses."""

from __future__ import annotations

import pytest

from yttl.transcribe.audio import SAMPLE_RATE
from yttl.transcribe.windows import speech_windows, split_at_pauses


def _spans(*seconds: tuple[float, float]) -> list[dict[str, int]]:
    return [{"start": int(a * SAMPLE_RATE), "end": int(b * SAMPLE_RATE)} for a, b in seconds]


def test_windows_are_filled_with_speech_up_to_30_seconds_and_cover_every_span() -> None:
    # 12 s of speech with 3 s pauses: two spans fit in 30 s of speech, a third does not
    spans = _spans(*[(15.0 * i, 15.0 * i + 12) for i in range(7)])
    windows = speech_windows(spans)
    assert [len(w.spans) for w in windows] == [2, 2, 2, 1]
    assert all(w.speech_seconds <= 30 for w in windows)
    assert [s for w in windows for s in w.spans] == [(s["start"], s["end"]) for s in spans]
    # a span longer than a window is cut into pieces that each fit
    long = speech_windows(_spans((0, 75)))
    assert [w.speech_seconds for w in long] == [30, 30, 15]
    assert long[1].start == 30 and long[2].end == 75


def test_a_window_never_reaches_across_more_than_a_minute_of_the_audio() -> None:
    # short utterances far apart: 28 s of speech would take five minutes of audio
    spans = _spans(*[(50.0 * i, 50.0 * i + 4) for i in range(7)])
    windows = speech_windows(spans)
    assert all(w.end - w.start <= 60 for w in windows)
    assert [len(w.spans) for w in windows] == [2, 2, 2, 1]
    assert len(speech_windows(spans, max_extent=float("inf"))) == 1


def test_window_text_is_cut_where_the_speaker_paused() -> None:
    # 4 s of speech at 10 s and 6 s at 40 s, laid end to end: packed 0-4 and 4-10
    spans = [(10.0, 14.0), (40.0, 46.0)]
    text = " ".join(f"w{i}" for i in range(10))
    pieces = split_at_pauses(text, 0.0, 10.0, spans)
    assert [(a, b) for a, b, _ in pieces] == [(10.0, 14.0), (40.0, 46.0)]
    assert [p.split() for _, _, p in pieces] == [text.split()[:4], text.split()[4:]]


def test_short_pauses_and_partial_segments_stay_whole() -> None:
    spans = [(10.0, 14.0), (14.5, 20.5), (60.0, 70.0)]
    # a pause of half a second is part of speaking: one piece
    assert split_at_pauses("a b c", 0.0, 10.0, spans) == [(10.0, 20.5, "a b c")]
    # a segment that starts and ends inside spans is placed inside them
    pieces = split_at_pauses("one two three four", 2.0, 15.0, spans)
    assert pieces[0][0] == pytest.approx(12.0) and pieces[-1][1] == pytest.approx(65.0)
    assert " ".join(p for _, _, p in pieces) == "one two three four"
    assert split_at_pauses("x", 50.0, 60.0, spans) == []  # past the speech it was given
