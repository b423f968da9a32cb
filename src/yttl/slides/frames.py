"""A video's frames, a few a second, with PyAV: a small grayscale thumbnail of each to
compare, and the frame itself kept for the moments that become slides."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from yttl.errors import InputError
from yttl.render.links import format_clock

__all__ = ["MAX_WIDTH", "Sample", "has_picture", "jpeg", "png_for_ocr", "samples"]

logger = logging.getLogger(__name__)

MAX_WIDTH = 1280  # of a kept slide image
CUT_SLACK = 5.0  # seconds the frames may end before the picture's recorded length
OCR_HEIGHT = 720  # smaller frames are enlarged for OCR: small text reads better so


@dataclass(frozen=True)
class Sample:
    time: float
    thumb: np.ndarray  # uint8, height x width
    frame: Any  # av.VideoFrame, encoded only if it becomes a slide


def has_picture(path: Path) -> bool:
    """Whether the file has a video stream that is not just cover art."""
    import av

    try:
        with av.open(str(path)) as container:
            return any(not _is_cover(s) for s in container.streams.video)
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read {path.name} for slides: {exc}") from exc


def _is_cover(stream: Any) -> bool:
    return bool(stream.disposition & 0x400)  # AV_DISPOSITION_ATTACHED_PIC: an album cover


def samples(path: Path, fps: float, width: int, height: int) -> Iterator[Sample]:
    """Every ``1/fps`` seconds the frame on screen then, with its thumbnail. A damaged
    packet is skipped, as ffmpeg does: the slides before and after it are kept."""
    import av

    step = 1.0 / fps
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams.video if not _is_cover(s))
            stream.thread_type = "AUTO"
            due, reached, damaged = 0.0, 0.0, 0
            for frame in _frames(container, stream):
                if frame is None:
                    damaged += 1
                    continue
                time = frame.time
                if time is None or time + 1e-6 < due:
                    continue
                while due <= time + 1e-6:
                    due += step
                small = frame.reformat(width=width, height=height, format="gray")
                thumb = small.to_ndarray()[:, :width].copy()
                reached = float(time)
                yield Sample(reached, thumb, frame)
            if damaged:
                logger.warning("%s: %d damaged video packets skipped", path.name, damaged)
            _cut_short(path, reached, stream)
    except av.FFmpegError as exc:
        raise InputError(f"cannot decode the picture of {path.name}: {exc}") from exc


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    """The stream's frames; None for a packet that would not decode."""
    import av

    for packet in container.demux(stream):
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            yield None
            continue
        yield from decoded


def _cut_short(path: Path, reached: float, stream: Any) -> None:
    """Says so when the frames end well before the picture's recorded length: a file cut
    short (a partial download) decodes quietly up to its cut, and its slides stop there."""
    if stream.duration is None or stream.time_base is None:
        return
    length = float(stream.duration * stream.time_base)
    if reached < length - max(CUT_SLACK, 0.05 * length):
        logger.warning(
            "%s: the picture ends at %s of %s (a file cut short or damaged?); slides up to there",
            path.name,
            format_clock(reached),
            format_clock(length),
        )


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _encode(frame: Any, codec: str, pix_fmt: str, width: int, height: int) -> bytes:
    import av

    context: Any = av.CodecContext.create(codec, "w")  # a video encoder
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    if codec == "mjpeg":  # a fixed, good quality: text stays sharp
        context.qmin, context.qmax = 2, 4
    picture = frame.reformat(width=width, height=height, format=pix_fmt)
    picture.pts = 0
    packets = [*context.encode(picture), *context.encode(None)]
    return b"".join(bytes(p) for p in packets)


def jpeg(frame: Any) -> bytes:
    """The frame as a JPEG at most ``MAX_WIDTH`` wide."""
    width = min(frame.width, MAX_WIDTH)
    height = frame.height * width / frame.width
    return _encode(frame, "mjpeg", "yuvj420p", _even(width), _even(height))


def png_for_ocr(frame: Any) -> bytes:
    """The frame in grayscale, enlarged when small, losslessly: what OCR reads best."""
    scale = max(1.0, OCR_HEIGHT / frame.height)
    return _encode(frame, "png", "gray", _even(frame.width * scale), _even(frame.height * scale))
