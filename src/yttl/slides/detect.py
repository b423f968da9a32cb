"""Where a new slide begins: the picture changes, then holds.

Frames come in a few times a second as small grayscale thumbnails. A *run* is a stretch
whose every thumbnail stays within a few pixels of the run's first one (its anchor):
compared with the anchor, not the previous frame, so a slow drift (a speaker moving a
little at a time) still breaks it. A run that lasts ``hold`` seconds is a slide, unless
it shows the same picture as the slide before (the speaker stepped in front and left,
a fade out and back in), which then goes on. Transitions and moving pictures never
hold, so they never count. PySceneDetect's ContentDetector finds cuts by a frame-to-frame
score alone; a slide is the opposite question (what stays), so a hold is what decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChangeDetector", "DetectOptions", "Held", "changed_share"]


@dataclass(frozen=True)
class DetectOptions:
    fps: float = 2.0  # samples a second
    hold: float = 2.0  # seconds a picture must stay to be a slide
    width: int = 160  # of the thumbnail compared
    height: int = 90
    pixel_delta: int = 24  # a pixel changed by more than this (of 255) has changed
    still_share: float = 0.003  # a run holds while at most this share of pixels changed
    new_share: float = 0.01  # a held picture is a new slide when this share differs


@dataclass(frozen=True)
class Held:
    """What a sample told: a new slide from ``start`` (``new``), or the last one goes on
    to ``end``."""

    start: float
    end: float
    new: bool


def changed_share(a: np.ndarray, b: np.ndarray, delta: int) -> float:
    """The share of pixels that differ by more than ``delta``."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(np.count_nonzero(diff > delta)) / diff.size


class ChangeDetector:
    """Fed thumbnails in time order; says when a slide begins and how long it lasts."""

    def __init__(self, options: DetectOptions) -> None:
        self.options = options
        self._anchor: np.ndarray | None = None
        self._anchor_time = 0.0
        self._held = False  # the current run has lasted ``hold`` already
        self._last: np.ndarray | None = None  # the picture of the last slide

    def feed(self, time: float, thumb: np.ndarray) -> Held | None:
        o = self.options
        step = 1.0 / o.fps
        if (
            self._anchor is None
            or changed_share(thumb, self._anchor, o.pixel_delta) > o.still_share
        ):
            self._anchor, self._anchor_time, self._held = thumb, time, False
            return None
        if time - self._anchor_time + step < o.hold - 1e-6:
            return None
        if self._held:
            return Held(self._anchor_time, time + step, False)
        self._held = True
        same = (
            self._last is not None
            and changed_share(thumb, self._last, o.pixel_delta) <= o.new_share
        )
        self._last = thumb
        return Held(self._anchor_time, time + step, not same)
