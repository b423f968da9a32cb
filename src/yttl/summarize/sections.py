"""Cutting a video into hours and sections (DESIGN §1), and filling them with text.

Hour ``h`` holds sections ``[h*3600 + k*300, +300)``; a final remainder shorter than 60 s
joins the section before it, and a final hour shorter than 60 s joins the hour before.
With chapters, each chapter is a section, grouped by the hour it starts in.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

from yttl.models import Chapter, Section, TranscriptSegment

__all__ = [
    "HOUR_SECONDS",
    "MIN_TAIL_SECONDS",
    "SECTION_SECONDS",
    "FilledSection",
    "SectionPlan",
    "assign_segments",
    "plan_chapters",
    "plan_fixed",
    "stream_sections",
]

HOUR_SECONDS = 3600
SECTION_SECONDS = 300
MIN_TAIL_SECONDS = 60


@dataclass(frozen=True)
class SectionPlan:
    """Sections grouped by hour; together they tile ``[0, duration)``."""

    hours: tuple[tuple[Section, ...], ...]
    duration: float

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(s for hour in self.hours for s in hour)

    def hour_bounds(self, hour: int) -> tuple[float, float]:
        sections = self.hours[hour]
        return sections[0].start, sections[-1].end


@dataclass(frozen=True)
class FilledSection:
    section: Section
    segments: tuple[TranscriptSegment, ...]
    missing: str | None = None  # the transcript stopped short of it: why

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()


def plan_fixed(duration: float) -> SectionPlan:
    if duration <= 0:
        raise ValueError("duration must be positive")
    hour_count = max(1, math.ceil(duration / HOUR_SECONDS))
    if hour_count > 1 and duration - (hour_count - 1) * HOUR_SECONDS < MIN_TAIL_SECONDS:
        hour_count -= 1
    hours: list[tuple[Section, ...]] = []
    for h in range(hour_count):
        hour_start = h * HOUR_SECONDS
        hour_end = duration if h == hour_count - 1 else hour_start + HOUR_SECONDS
        bounds: list[list[float]] = []
        start = float(hour_start)
        while start < hour_end:
            bounds.append([start, min(start + SECTION_SECONDS, hour_end)])
            start += SECTION_SECONDS
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_TAIL_SECONDS:
            tail = bounds.pop()
            bounds[-1][1] = tail[1]
        hours.append(tuple(Section(h, k, b[0], b[1]) for k, b in enumerate(bounds)))
    return SectionPlan(tuple(hours), float(duration))


def plan_chapters(duration: float, chapters: Sequence[Chapter]) -> SectionPlan:
    """One section per chapter; chapters are normalised to tile ``[0, duration)``."""
    if duration <= 0:
        raise ValueError("duration must be positive")
    ordered = sorted((c for c in chapters if c.start < duration), key=lambda c: c.start)
    if not ordered:
        return plan_fixed(duration)
    starts = [0.0] + [max(0.0, c.start) for c in ordered[1:]]
    ends = [*starts[1:], float(duration)]
    grouped: dict[int, list[tuple[float, float, str]]] = {}
    for chapter, start, end in zip(ordered, starts, ends, strict=True):
        if end > start:
            grouped.setdefault(int(start // HOUR_SECONDS), []).append((start, end, chapter.title))
    hours = tuple(
        tuple(Section(h, k, s, e, title) for k, (s, e, title) in enumerate(items))
        for h, items in enumerate(grouped[key] for key in sorted(grouped))
    )
    return SectionPlan(hours, float(duration))


def _index_for(starts: Sequence[float], time: float) -> int:
    return max(0, bisect.bisect_right(starts, time) - 1)


def assign_segments(
    segments: Iterable[TranscriptSegment], plan: SectionPlan
) -> list[FilledSection]:
    """Every segment lands in exactly one section: the one its start falls in."""
    sections = plan.sections
    starts = [s.start for s in sections]
    buckets: list[list[TranscriptSegment]] = [[] for _ in sections]
    for segment in segments:
        buckets[_index_for(starts, segment.start)].append(segment)
    return [FilledSection(s, tuple(b)) for s, b in zip(sections, buckets, strict=True)]


async def stream_sections(
    segments: AsyncIterable[TranscriptSegment],
    plan: SectionPlan,
    cut: Callable[[], str | None] = lambda: None,
) -> AsyncIterator[FilledSection]:
    """Yield each section as soon as the (time-ordered) transcript has passed its end.
    When the transcript stops short (``cut()`` says why), the sections it did not pass
    are yielded with that reason, not as sections without speech."""
    sections = plan.sections
    starts = [s.start for s in sections]
    current = 0
    bucket: list[TranscriptSegment] = []
    async for segment in segments:
        index = _index_for(starts, segment.start)
        while index > current:
            yield FilledSection(sections[current], tuple(bucket))
            bucket = []
            current += 1
        bucket.append(segment)
    reason = cut()
    while current < len(sections):
        yield FilledSection(sections[current], tuple(bucket), reason)
        bucket = []
        current += 1
