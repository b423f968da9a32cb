"""The transcript as plain text, SubRip and WebVTT."""

from __future__ import annotations

from collections.abc import Sequence

from yttl.models import TranscriptSegment
from yttl.render.links import format_clock

__all__ = ["to_srt", "to_txt", "to_vtt"]


def _stamp(seconds: float, separator: str) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_txt(segments: Sequence[TranscriptSegment]) -> str:
    return "".join(f"[{format_clock(s.start)}] {s.text}\n" for s in segments)


def to_srt(segments: Sequence[TranscriptSegment]) -> str:
    blocks = [
        f"{i}\n{_stamp(s.start, ',')} --> {_stamp(max(s.end, s.start), ',')}\n{s.text}\n"
        for i, s in enumerate(segments, 1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: Sequence[TranscriptSegment]) -> str:
    # "-->" inside a cue would end it early; WebVTT has no escape, so use an arrow.
    cues = [
        f"{_stamp(s.start, '.')} --> {_stamp(max(s.end, s.start), '.')}\n"
        f"{s.text.replace('-->', '→').replace('&', '&amp;').replace('<', '&lt;')}\n"
        for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
