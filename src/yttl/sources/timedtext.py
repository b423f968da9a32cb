"""YouTube's timed-text formats: json3, srv1, srv2, srv3, and TTML.

The text of json3 and srv events is plain text, not markup: a ``<`` in speech stays. The
XML formats are parsed with the standard library's expat (no external entities are
fetched, and expat bounds entity expansion).
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ElementTree

from yttl.errors import InputError
from yttl.models import TranscriptSegment

__all__ = ["parse_json3", "parse_srv", "parse_ttml"]

_SPACE = re.compile(r"\s+")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|m|s|ms|f|t)$")


def _plain(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def parse_json3(text: str) -> list[TranscriptSegment]:
    """``events[]`` with ``tStartMs``, ``dDurationMs`` and ``segs[].utf8`` (plain text)."""
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
        # plain text, so no tag stripping ("x < y" stays), but uploaded tracks do carry
        # HTML entities
        if cleaned := _plain(html.unescape(raw)):
            segments.append(TranscriptSegment(start, start + max(duration, 0.0), cleaned))
    return segments


def _xml(text: str, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(text.lstrip("\ufeff").strip())
    except ElementTree.ParseError as exc:
        raise InputError(f"malformed {name} captions: {exc}") from exc


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _number(value: str | None, name: str) -> float:
    try:
        return float(value or 0)
    except ValueError as exc:
        raise InputError(f"malformed {name} captions: {value!r} is not a time") from exc


def parse_srv(text: str) -> list[TranscriptSegment]:
    """srv1 (``<text start= dur=>`` in seconds), srv2 (``<text t= d=>``) and srv3
    (``<p t= d=>`` with ``<s>`` words), the last two in milliseconds."""
    root = _xml(text, "srv")
    segments: list[TranscriptSegment] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag not in ("text", "p"):
            continue
        if "start" in element.attrib:  # srv1
            start = _number(element.get("start"), "srv1")
            duration = _number(element.get("dur"), "srv1")
        elif "t" in element.attrib:
            start = _number(element.get("t"), "srv") / 1000
            duration = _number(element.get("d"), "srv") / 1000
        else:
            continue
        if words := _plain("".join(element.itertext())):
            segments.append(TranscriptSegment(start, start + max(duration, 0.0), words))
    return segments


def _ttml_time(value: str | None, frame_rate: float, tick_rate: float) -> float | None:
    """TTML clock time (``hh:mm:ss.fff``, ``hh:mm:ss:ff`` frames) or offset (``12.5s``,
    ``500ms``, ``30f``, ``1000t``)."""
    if not value:
        return None
    value = value.strip()
    if match := _OFFSET.match(value):
        number, unit = float(match[1]), match[2]
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001,
                 "f": 1 / frame_rate, "t": 1 / tick_rate}[unit]  # fmt: skip
        return number * scale
    parts = value.split(":")
    if len(parts) == 4:  # hours:minutes:seconds:frames
        hours, minutes, seconds, frames = (float(p) for p in parts)
        return hours * 3600 + minutes * 60 + seconds + frames / frame_rate
    if match := _CLOCK.match(value):
        return float(match[1] or 0) * 3600 + float(match[2]) * 60 + float(match[3])
    raise InputError(f"malformed ttml captions: {value!r} is not a time")


def _ttml_text(element: ElementTree.Element) -> str:
    """Text of a ``<p>`` with ``<br/>`` as a space and ``<span>`` contents kept."""
    pieces: list[str] = [element.text or ""]
    for child in element:
        pieces.append(" " if _local(child.tag) == "br" else _ttml_text(child))
        pieces.append(child.tail or "")
    return "".join(pieces)


def parse_ttml(text: str) -> list[TranscriptSegment]:
    """TTML (W3C Timed Text), as YouTube and broadcasters write it: ``<p begin end|dur>``."""
    root = _xml(text, "ttml")
    attributes = {_local(k): v for k, v in root.attrib.items()}
    frame_rate = _number(attributes.get("frameRate") or "30", "ttml")
    tick_rate = _number(attributes.get("tickRate") or "1", "ttml")
    segments: list[TranscriptSegment] = []
    for element in root.iter():
        if _local(element.tag) != "p":
            continue
        begin = _ttml_time(element.get("begin"), frame_rate, tick_rate)
        if begin is None:
            continue
        end = _ttml_time(element.get("end"), frame_rate, tick_rate)
        if end is None:
            end = begin + (_ttml_time(element.get("dur"), frame_rate, tick_rate) or 0.0)
        if words := _plain(_ttml_text(element)):
            segments.append(TranscriptSegment(begin, max(end, begin), words))
    return segments
