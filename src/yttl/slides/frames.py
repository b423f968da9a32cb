"""A video's frames, a few a second, with PyAV: a small grayscale thumbnail of each to
compare, and the frame itself kept for the moments that become slides."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from yttl.errors import InputError

__all__ = ["MAX_WIDTH", "Sample", "has_picture", "jpeg", "png_for_ocr", "samples"]

MAX_WIDTH = 1280  # of a kept slide image
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
    """Every ``1/fps`` seconds the frame on screen then, with its thumbnail."""
    import av

    step = 1.0 / fps
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams.video if not _is_cover(s))
            stream.thread_type = "AUTO"
            due = 0.0
            for frame in container.decode(stream):
                time = frame.time
                if time is None or time + 1e-6 < due:
                    continue
                while due <= time + 1e-6:
                    due += step
                small = frame.reformat(width=width, height=height, format="gray")
                thumb = small.to_ndarray()[:, :width].copy()
                yield Sample(float(time), thumb, frame)
    except av.FFmpegError as exc:
        raise InputError(f"cannot decode the picture of {path.name}: {exc}") from exc


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
