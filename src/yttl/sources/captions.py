"""Caption tracks: choosing one, decoding bytes, parsing json3, WebVTT and SubRip.

The parsers are written for real tracks rather than the specs alone: json3 window
events without ``segs``, ``"\\n"`` segments, the rolling duplicated lines of YouTube's
automatic VTT, tags and entities inside cues, a BOM, CRLF line ends, and files that are
not UTF-8.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence

from yttl.errors import InputError
from yttl.models import CaptionTrack, TranscriptSegment, VideoInfo

__all__ = [
    "FORMAT_PREFERENCE",
    "choose_track",
    "decode_caption_bytes",
    "parse_captions",
    "parse_json3",
    "parse_srt",
    "parse_vtt",
]

FORMAT_PREFERENCE = ("json3", "vtt", "srt")
FLASH_SECONDS = 0.03

_TAG = re.compile(r"<[^>]*>")
_ASS_TAG = re.compile(r"\{\\[^}]*\}")
_SPACE = re.compile(r"\s+")
_TIMING = re.compile(
    r"^\s*(?P<start>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\s*-->\s*"
    r"(?P<end>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)"
)


def choose_track(video: VideoInfo, language: str = "en") -> CaptionTrack | None:
    """Manual subtitles in ``language`` first, then automatic captions (``-orig`` first).

    Within a language the format preference is json3, then vtt, then srt.
    """

    def best_format(tracks: Iterable[CaptionTrack]) -> CaptionTrack | None:
        by_ext = {t.ext: t for t in tracks}
        for ext in FORMAT_PREFERENCE:
            if ext in by_ext:
                return by_ext[ext]
        return None

    def by_language(tracks: Sequence[CaptionTrack], wanted: Sequence[str]) -> CaptionTrack | None:
        for lang in wanted:
            found = best_format(t for t in tracks if t.language == lang)
            if found is not None:
                return found
        return None

    regional = {t.language for t in video.subtitles if t.language.startswith(language + "-")}
    manual_langs = [language, *sorted(regional), "und"]
    return by_language(video.subtitles, manual_langs) or by_language(
        video.automatic_captions, [f"{language}-orig", language]
    )


def decode_caption_bytes(data: bytes) -> str:
    """Text of a caption file: UTF-8 (BOM or not), UTF-16 with a BOM, else cp1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_captions(text: str, ext: str) -> list[TranscriptSegment]:
    """Parse a caption file of format ``ext`` (json3, vtt or srt)."""
    parser = {"json3": parse_json3, "vtt": parse_vtt, "srt": parse_srt}.get(ext)
    if parser is None:
        raise InputError(f"unsupported caption format {ext!r} (json3, vtt and srt are read)")
    return parser(text)


def _clean(text: str) -> str:
    text = _ASS_TAG.sub("", _TAG.sub("", text))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def parse_json3(text: str) -> list[TranscriptSegment]:
    """YouTube's json3 layout: ``events[]`` with ``tStartMs``, ``dDurationMs``, ``segs``."""
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed json3 captions: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events", []), list):
        raise InputError("malformed json3 captions: no 'events' list")
    segments: list[TranscriptSegment] = []
    for event in data.get("events", []):
        if not isinstance(event, dict) or not event.get("segs"):
            continue  # window set-up events carry no text
        try:
            start = float(event.get("tStartMs", 0)) / 1000
            duration = float(event.get("dDurationMs", 0)) / 1000
            raw = "".join(str(seg.get("utf8", "")) for seg in event["segs"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"malformed json3 caption event at {event.get('tStartMs')}") from exc
        cleaned = _clean(raw)
        if cleaned:
            segments.append(TranscriptSegment(start, start + max(duration, 0.0), cleaned))
    return _close_gaps(segments)


def _timestamp(value: str) -> float:
    """``[h:]mm:ss[.mmm]`` in seconds, computed in whole milliseconds to stay exact."""
    clock, _, fraction = value.replace(",", ".").partition(".")
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return (seconds * 1000 + int(fraction.ljust(3, "0")[:3] or 0)) / 1000


def _cues(text: str) -> Iterable[tuple[float, float, list[str]]]:
    """Timing line plus following text lines, for both VTT and SRT."""
    lines = text.lstrip("\ufeff").splitlines()
    i = 0
    while i < len(lines):
        match = _TIMING.match(lines[i])
        if match is None:
            i += 1
            continue
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() and not _TIMING.match(lines[i]):
            body.append(lines[i])
            i += 1
        yield _timestamp(match["start"]), _timestamp(match["end"]), body


def parse_vtt(text: str) -> list[TranscriptSegment]:
    """WebVTT, including YouTube's automatic captions whose cues repeat the line before."""
    stripped = text.lstrip("\ufeff").lstrip()
    if not stripped.startswith("WEBVTT"):
        raise InputError("malformed vtt captions: the file does not start with WEBVTT")
    return _segments_from_cues(_cues(stripped))


def parse_srt(text: str) -> list[TranscriptSegment]:
    segments = _segments_from_cues(_cues(text))
    if not segments and _SPACE.sub("", text.lstrip("\ufeff")):
        raise InputError("malformed srt captions: no cue with a timing line was found")
    return segments


def _segments_from_cues(cues: Iterable[tuple[float, float, list[str]]]) -> list[TranscriptSegment]:
    segments: list[TranscriptSegment] = []
    previous_lines: set[str] = set()
    for start, end, body in cues:
        lines = [_clean(line) for line in body]
        lines = [line for line in lines if line]
        # YouTube's rolling captions carry the previous cue's line over above the new one,
        # and flash the old text in a cue of a few milliseconds. A whole cue that repeats
        # the one before at normal length is real speech ("No! No!") and is kept.
        repeated = [line for line in lines if line in previous_lines]
        fresh = lines
        if repeated and (len(repeated) < len(lines) or end - start < FLASH_SECONDS):
            fresh = [line for line in lines if line not in previous_lines]
        if lines:
            previous_lines = set(lines)
        if fresh and end >= start:
            segments.append(TranscriptSegment(start, end, " ".join(fresh)))
    return _close_gaps(segments)


def _close_gaps(segments: list[TranscriptSegment]) -> list[TranscriptSegment]:
    """Sort by start; an overlapping segment ends where the next one starts."""
    segments.sort(key=lambda s: s.start)
    result: list[TranscriptSegment] = []
    for current, following in zip(segments, [*segments[1:], None], strict=False):
        end = current.end
        if following is not None and following.start < end:
            end = max(following.start, current.start)
        result.append(TranscriptSegment(current.start, end, current.text))
    return result
