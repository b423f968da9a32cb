"""Caption tracks: choosing one, decoding its bytes, and reading WebVTT and SubRip.

WebVTT follows the specification's parsing rules (a ``WEBVTT`` header, blocks separated
by blank lines, NOTE/STYLE/REGION blocks skipped, cue settings after the timing);
SubRip the usual conventions (an index, ``hh:mm:ss,mmm`` times, HTML-like tags).
YouTube's automatic captions roll: each cue repeats the line before above a new one,
and "hold" cues repeat it alone. Those repeats are removed only when the file's layout
is that rolling one; in an ordinary subtitle file, a line said twice is said twice.
YouTube's other formats (json3, srv1-3, TTML) are read by ``yttl.sources.timedtext``.
"""

from __future__ import annotations

import codecs
import html
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from yttl.errors import InputError
from yttl.models import CaptionTrack, TranscriptSegment, VideoInfo
from yttl.sources import timedtext

__all__ = [
    "FORMAT_PREFERENCE",
    "choose_track",
    "decode_caption_bytes",
    "original_language",
    "parse_captions",
    "parse_json3",
    "parse_srt",
    "parse_srv",
    "parse_ttml",
    "parse_vtt",
]

FORMAT_PREFERENCE = ("json3", "vtt", "srv3", "srv2", "srv1", "ttml", "srt")

_RUBY_TEXT = re.compile(r"<rt\b[^>]*>.*?</rt\s*>|<rp\b[^>]*>.*?</rp\s*>", re.I | re.S)
_TAG = re.compile(r"<(?:/?[A-Za-z][^<>]*|\d[\d:.]*)>")  # markup and inline timestamps
_ASS_TAG = re.compile(r"\{\\[^}]*\}")
_SPACE = re.compile(r"\s+")
_TIME = r"(?:\d+:)?\d{1,2}:\d{1,2}(?:[.,:]\d+)?"
_TIMING = re.compile(rf"^\s*(?P<start>{_TIME})\s*-->\s*(?P<end>{_TIME})(?:\s|$)")
_ROLLING_MARK = re.compile(r"<\d{2}:\d{2}:\d{2}\.\d{3}>|<c>")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16's
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)  # fmt: skip


def _best_format(tracks: Iterable[CaptionTrack]) -> CaptionTrack | None:
    by_ext = {t.ext: t for t in tracks}
    return next((by_ext[ext] for ext in FORMAT_PREFERENCE if ext in by_ext), None)


def _by_language(tracks: Sequence[CaptionTrack], wanted: Sequence[str]) -> CaptionTrack | None:
    for lang in wanted:
        found = _best_format(t for t in tracks if t.language == lang)
        if found is not None:
            return found
    return None


def original_language(video: VideoInfo) -> str | None:
    """The language the video is spoken in: what the site says, else the language of
    YouTube's ``-orig`` automatic track (its speech recognition of the original audio)."""
    if video.language:
        return video.language
    spoken = sorted(t.language[: -len("-orig")] for t in video.automatic_captions
                    if t.language.endswith("-orig"))  # fmt: skip
    return spoken[0] if spoken else None


def _in_language(video: VideoInfo, language: str, *also: str) -> CaptionTrack | None:
    """Manual subtitles in ``language`` (or a regional form of it), then its automatic
    captions: ``-orig`` first, and the plain automatic track only when it is not a
    machine translation (YouTube lists one for every language; the original has an
    ``-orig`` twin or none at all)."""
    regional = {t.language for t in video.subtitles if t.language.startswith(language + "-")}
    manual = _by_language(video.subtitles, [language, *sorted(regional), *also])
    if manual is not None:
        return manual
    automatic = _by_language(video.automatic_captions, [f"{language}-orig"])
    if automatic is not None:
        return automatic
    spoken = original_language(video)
    translated = spoken is not None and spoken.split("-")[0] != language.split("-")[0]
    return None if translated else _by_language(video.automatic_captions, [language])


def choose_track(video: VideoInfo, language: str = "en") -> CaptionTrack | None:
    """The track in ``language``; without one, the video's own-language track (manual,
    else the original automatic one) rather than transcribing. A machine-translated
    automatic track is never taken over the original. Within a language the format
    preference is ``FORMAT_PREFERENCE``."""
    track = _in_language(video, language, "und")  # und: a sidecar file named NAME.vtt
    if track is not None:
        return track
    spoken = original_language(video)
    return _in_language(video, spoken) if spoken and spoken != language else None


def decode_caption_bytes(data: bytes) -> str:
    """Text of a caption file: by its byte-order mark (UTF-8, -16 or -32), else UTF-16
    without one (NULs between ASCII letters), else UTF-8, else Windows-1252 (the usual
    legacy single-byte encoding of subtitle files)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    head = data[:200]
    if len(head) >= 4 and head.count(0) >= len(head) // 3:
        return data.decode("utf-16-le" if head[1] == 0 else "utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_captions(text: str, ext: str) -> list[TranscriptSegment]:
    """Parse a caption file of format ``ext``; a file with text that yields no cue at all
    is an ``InputError``, never an empty transcript."""
    parsers = {"json3": parse_json3, "vtt": parse_vtt, "srt": parse_srt, "srv1": parse_srv,
               "srv2": parse_srv, "srv3": parse_srv, "ttml": parse_ttml}  # fmt: skip
    parser = parsers.get(ext)
    if parser is None:
        raise InputError(f"unsupported caption format {ext!r} ({', '.join(parsers)} are read)")
    return parser(text)


def _read(segments: list[TranscriptSegment], text: str, name: str) -> list[TranscriptSegment]:
    """Time-ordered, instants merged; and never an empty result from a file with text."""
    if not segments and _SPACE.sub("", text.lstrip("\ufeff")):
        raise InputError(f"malformed {name} captions: the file holds text, but no cue with "
                         "a timing could be read from it")  # fmt: skip
    return merge_instants(segments)


def _clean(text: str) -> str:
    text = _TAG.sub("", _RUBY_TEXT.sub("", text))
    return _SPACE.sub(" ", html.unescape(_ASS_TAG.sub("", text))).strip()


def _timestamp(value: str) -> float:
    """``[h:]mm:ss[.mmm]`` (also ``,mmm``) in seconds, in whole milliseconds."""
    value = value.replace(",", ".")
    clock, _, fraction = value.partition(".")
    parts = clock.split(":")
    if len(parts) == 4:  # hh:mm:ss:ff, frames at 30 a second (seen in broadcast SRT)
        *parts, frames = parts
        fraction = f"{int(frames) * 1000 // 30:03d}"
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return (seconds * 1000 + int((fraction or "0").ljust(3, "0")[:3])) / 1000


@dataclass(frozen=True)
class _Cue:
    start: float
    end: float
    raw: list[str]  # payload lines as written
    lines: list[str]  # cleaned, without empty ones


def _cues(lines: Sequence[str]) -> Iterable[_Cue]:
    """Timing line plus the payload lines after it, up to a blank line or the next
    timing line; anything else (identifiers, NOTE blocks, indexes) is skipped."""
    i = 0
    while i < len(lines):
        match = _TIMING.match(lines[i])
        if match is None:
            if lines[i].strip() in ("NOTE", "STYLE", "REGION") or \
                    lines[i].startswith(("NOTE ", "NOTE\t", "STYLE ", "REGION ")):  # fmt: skip
                while i < len(lines) and lines[i].strip():
                    i += 1
            i += 1
            continue
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() and not _TIMING.match(lines[i]):
            body.append(lines[i])
            i += 1
        cleaned = [c for c in (_clean(line) for line in body) if c]
        yield _Cue(_timestamp(match["start"]), _timestamp(match["end"]), body, cleaned)


def _is_rolling(cues: Sequence[_Cue]) -> bool:
    """YouTube's rolling auto-captions: inline word timings (current layout), or most
    cues starting with the line the cue before ended with (older layout)."""
    if any(_ROLLING_MARK.search(line) for cue in cues[:50] for line in cue.raw):
        return True
    with_text = [cue for cue in cues if cue.lines]
    pairs = [(before, cue) for before, cue in itertools.pairwise(with_text)
             if len(cue.lines) >= 2]  # fmt: skip
    # a line carried up, with a new one below it: the rolling pattern (one-line cues
    # that repeat are speech said again, or hold cues, and prove nothing)
    carried = sum(1 for before, cue in pairs if cue.lines[0] == before.lines[-1]
                  and cue.lines[-1] != before.lines[-1])  # fmt: skip
    return carried >= 3 and carried >= 0.5 * len(pairs)


def _from_cues(cues: list[_Cue]) -> list[TranscriptSegment]:
    rolling = _is_rolling(cues)
    segments: list[TranscriptSegment] = []
    previous: set[str] = set()
    for cue in cues:
        lines = cue.lines
        if rolling:
            # A carried-over line, or a hold cue that only repeats the line before, is
            # not new speech in this layout.
            lines = [line for line in lines if line not in previous]
            if cue.lines:
                previous = set(cue.lines)
        if lines and cue.end >= cue.start:
            segment = TranscriptSegment(cue.start, cue.end, " ".join(lines))
            if not segments or segment != segments[-1]:  # a cue written twice is one cue
                segments.append(segment)
    return segments


def parse_vtt(text: str) -> list[TranscriptSegment]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not re.match(r"^WEBVTT(?:[ \t]|$)", lines[0]):
        raise InputError("malformed vtt captions: the file does not start with WEBVTT")
    body = "\n".join(lines[1:])
    return _read(_from_cues(list(_cues(lines[1:]))), body, "vtt")


def parse_srt(text: str) -> list[TranscriptSegment]:
    return _read(_from_cues(list(_cues(text.lstrip("\ufeff").splitlines()))), text, "srt")


def parse_json3(text: str) -> list[TranscriptSegment]:
    return merge_instants(timedtext.parse_json3(text))  # a track of no events is valid


def parse_srv(text: str) -> list[TranscriptSegment]:
    return _read(timedtext.parse_srv(text), "x" if "<text" in text or "<p" in text else "",
                 "srv")  # fmt: skip


def parse_ttml(text: str) -> list[TranscriptSegment]:
    return _read(timedtext.parse_ttml(text), "x" if "<p" in text else "", "ttml")


def merge_instants(segments: list[TranscriptSegment]) -> list[TranscriptSegment]:
    """Time order; a cue of no length, or several starting at the same moment, joins
    into one segment (SRT and VTT cannot express zero-length cues); an overlapping
    segment ends where the next one starts."""
    ordered = sorted(segments, key=lambda s: s.start)
    merged: list[TranscriptSegment] = []
    for segment in ordered:
        if merged and (segment.start == merged[-1].start or segment.end <= segment.start
                       or merged[-1].end <= merged[-1].start):  # fmt: skip
            last = merged[-1]
            merged[-1] = TranscriptSegment(last.start, max(last.end, segment.end),
                                           f"{last.text} {segment.text}")  # fmt: skip
            continue
        merged.append(segment)
    result: list[TranscriptSegment] = []
    for current, following in zip(merged, [*merged[1:], None], strict=False):
        end = current.end
        if following is not None and following.start < end:
            end = following.start
        if end <= current.start:  # an instant with nothing after it to join
            end = following.start if following is not None else current.start + 0.001
        result.append(TranscriptSegment(current.start, end, current.text))
    return result
