"""Where a new slide begins: the picture changes, then holds.

Frames come in a few times a second as small grayscale thumbnails. A *run* is a stretch
whose every thumbnail stays within a few pixels of the run's first one (its anchor):
compared with the anchor, not the previous frame, so a slow drift (a speaker moving a
little at a time) still breaks it. A run that lasts ``hold`` seconds is a slide, unless
it shows the same picture as the slide before (the speaker stepped in front and left,
a fade out and back in), which then goes on. A held picture only a little unlike the
slide before (a line added, a number changed: too few pixels to tell) is ``similar``: its
text decides (``stage.find_slides``). A blank picture (black between slides) is no slide.
Transitions and moving pictures never hold, so they never count. A small region that
keeps moving (the speaker's camera in a corner of the slides) is learnt over the last
seconds and left out of the comparison, as long as it is small: a moving picture that
fills the frame is never left out.
PySceneDetect's ContentDetector finds cuts by a frame-to-frame score alone; a slide is the
opposite question (what stays), so a hold is what decides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["ChangeDetector", "DetectOptions", "Held", "changed_share"]


@dataclass(frozen=True)
class DetectOptions:
    fps: float = 2.0  # samples a second
    hold: float = 2.0  # seconds a picture must stay to be a slide
    width: int = 320  # of the thumbnail compared: a digit of body text is some pixels of it
    height: int = 180
    pixel_delta: int = 24  # a pixel changed by more than this (of 255) has changed
    still_share: float = 0.003  # a run holds while at most this share of pixels changed
    new_share: float = 0.01  # a held picture is a new slide when this share differs
    busy_seconds: float = 10.0  # how long back a region that keeps moving is learnt
    busy_rate: float = 0.3  # a pixel that changed in this share of those frames is busy
    busy_max: float = 0.15  # busy pixels are left out only while they are this share at most
    blank_range: int = 24  # a picture whose pixels all lie within this (of 255) is blank
    spot: int = 10  # side of the square cells (of the thumbnail) each looked at alone
    spot_share: float = 0.2  # a cell with this share of pixels changed has changed


@dataclass(frozen=True)
class Held:
    """What a sample told: a new slide from ``start`` (``new``), or the last one goes on
    to ``end``; ``similar``: a picture held anew that differs from the last slide's by a
    few pixels only (the same slide, or one with a line more: its text tells)."""

    start: float
    end: float
    new: bool
    similar: bool = False


def _changed(a: np.ndarray, b: np.ndarray, delta: int) -> np.ndarray:
    return np.asarray(np.abs(a.astype(np.int16) - b.astype(np.int16)) > delta)


def changed_share(
    a: np.ndarray, b: np.ndarray, delta: int, ignore: np.ndarray | None = None
) -> float:
    """The share of pixels that differ by more than ``delta``, of those not ignored."""
    changed = _changed(a, b, delta)
    if ignore is None:
        return float(np.count_nonzero(changed)) / changed.size
    kept = changed.size - int(np.count_nonzero(ignore))
    return float(np.count_nonzero(changed & ~ignore)) / max(kept, 1)


def changed_spot(
    a: np.ndarray, b: np.ndarray, delta: int, cell: int, ignore: np.ndarray | None = None
) -> float:
    """The largest share of pixels changed in any ``cell`` x ``cell`` square: a word or a
    digit changed is a few pixels of the frame, but many of one square."""
    changed = _changed(a, b, delta)
    if ignore is not None:
        changed &= ~ignore
    rows, columns = changed.shape[0] // cell, changed.shape[1] // cell
    if rows == 0 or columns == 0:
        return 0.0
    cells = changed[: rows * cell, : columns * cell].reshape(rows, cell, columns, cell)
    return float(cells.mean(axis=(1, 3)).max())


class ChangeDetector:
    """Fed thumbnails in time order; says when a slide begins and how long it lasts."""

    def __init__(self, options: DetectOptions) -> None:
        self.options = options
        self._anchor: np.ndarray | None = None
        self._anchor_time = 0.0
        self._held = False  # the current run has lasted ``hold`` already
        self._last: np.ndarray | None = None  # the picture of the last slide
        self._previous: np.ndarray | None = None
        self._recent: deque[np.ndarray] = deque(
            maxlen=max(int(options.busy_seconds * options.fps), 1)
        )

    def _busy(self, thumb: np.ndarray) -> np.ndarray | None:
        """The small region that keeps moving (to leave out), if there is one."""
        o = self.options
        if self._previous is not None:
            self._recent.append(_changed(thumb, self._previous, o.pixel_delta))
        self._previous = thumb
        if len(self._recent) < 4:
            return None
        busy = np.mean(np.stack(self._recent), axis=0) >= o.busy_rate
        share = float(np.count_nonzero(busy)) / busy.size
        return busy if 0 < share <= o.busy_max else None

    def feed(self, time: float, thumb: np.ndarray) -> Held | None:
        o = self.options
        step = 1.0 / o.fps
        ignore = self._busy(thumb)
        if self._anchor is None or self._differs(thumb, self._anchor, ignore):
            self._anchor, self._anchor_time, self._held = thumb, time, False
            return None
        if time - self._anchor_time + step < o.hold - 1e-6:
            return None
        if self._held:
            return Held(self._anchor_time, time + step, False)
        if int(thumb.max()) - int(thumb.min()) <= o.blank_range:  # black between slides
            return None
        self._held = True
        previous, self._last = self._last, thumb
        differs = 1.0 if previous is None else changed_share(thumb, previous, o.pixel_delta, ignore)
        new = differs > o.new_share
        similar = not new and self._differs(thumb, previous, ignore)
        return Held(self._anchor_time, time + step, new, similar)

    def _differs(self, a: np.ndarray, b: np.ndarray | None, ignore: np.ndarray | None) -> bool:
        """Whether ``a`` is another picture than ``b``: many pixels changed, or a spot."""
        o = self.options
        if b is None:
            return True
        return (
            changed_share(a, b, o.pixel_delta, ignore) > o.still_share
            or changed_spot(a, b, o.pixel_delta, o.spot, ignore) > o.spot_share
        )
