from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yttl.models import Chapter, TranscriptSegment
from yttl.summarize.sections import (
    SectionPlan,
    assign_segments,
    plan_chapters,
    plan_fixed,
    stream_sections,
)


def _assert_tiles(plan: SectionPlan, duration: float) -> None:
    sections = plan.sections
    assert sections[0].start == 0
    assert sections[-1].end == pytest.approx(duration)
    for a, b in itertools.pairwise(sections):
        assert a.end == b.start
        assert a.end > a.start
    for h, hour in enumerate(plan.hours):
        assert [s.hour for s in hour] == [h] * len(hour)
        assert [s.index for s in hour] == list(range(len(hour)))


@pytest.mark.parametrize(
    ("duration", "shape", "last"),
    [
        (30, [1], (0, 30)),
        (654, [2], (300, 654)),  # a 54 s tail joins the section before
        (661, [3], (600, 661)),
        (3600, [12], (3300, 3600)),
        (3630, [12], (3300, 3630)),  # a 30 s final hour joins the hour before
        (3660, [12, 1], (3600, 3660)),
        (7200, [12, 12], (6900, 7200)),
        (7500, [12, 12, 1], (7200, 7500)),
        (9000, [12, 12, 6], (8700, 9000)),
    ],
)
def test_fixed_plan_shapes(duration: float, shape: list[int], last: tuple[int, int]) -> None:
    plan = plan_fixed(duration)
    assert [len(h) for h in plan.hours] == shape
    assert (plan.sections[-1].start, plan.sections[-1].end) == last
    _assert_tiles(plan, duration)


@given(st.floats(min_value=0.5, max_value=40 * 3600, allow_nan=False))
def test_fixed_sections_tile_the_video(duration: float) -> None:
    plan = plan_fixed(duration)
    _assert_tiles(plan, duration)
    for hour in plan.hours:
        assert hour[0].start % 3600 == 0
        for section in hour:
            assert section.end - section.start <= 300 + 60
            if section is not plan.sections[-1] or len(plan.sections) == 1:
                continue
            assert section.end - section.start >= 60


@given(
    st.floats(min_value=1, max_value=5 * 3600, allow_nan=False),
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), max_size=200),
)
def test_every_caption_lands_in_exactly_one_section(duration: float, spots: list[float]) -> None:
    plan = plan_fixed(duration)
    segments = [TranscriptSegment(x * duration, x * duration + 1, f"w{i}")
                for i, x in enumerate(spots)]  # fmt: skip
    filled = assign_segments(segments, plan)
    placed = [seg for f in filled for seg in f.segments]
    assert sorted(placed, key=id) == sorted(segments, key=id)
    for f in filled:
        for seg in f.segments:
            assert f.section.start <= seg.start < f.section.end or (
                f.section is plan.sections[-1] and seg.start >= f.section.start
            )


@given(
    st.floats(min_value=60, max_value=4 * 3600, allow_nan=False),
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=30),
)
def test_chapter_sections_tile_and_group_by_hour(duration: float, marks: list[float]) -> None:
    chapters = [Chapter(m * duration, duration, f"c{i}") for i, m in enumerate(marks)]
    plan = plan_chapters(duration, chapters)
    _assert_tiles(plan, duration)
    for hour in plan.hours:
        hours_of_starts = {int(s.start // 3600) for s in hour}
        assert len(hours_of_starts) == 1


@pytest.mark.corpus
def test_chapter_titles_and_hours_from_a_real_video() -> None:
    from tests.support.videos import load_info
    from yttl.sources.ytdlp import info_from_dict

    video = info_from_dict(load_info("vo4pMVb0R6M"), source="info_json")
    plan = plan_chapters(video.duration, video.chapters)
    assert [s.title for s in plan.sections] == [c.title for c in video.chapters]
    assert len(plan.hours) == 1


def test_streamed_sections_close_in_order_and_match_assignment() -> None:
    plan = plan_fixed(1900)
    segments = [TranscriptSegment(t, t + 2, f"w{t}") for t in range(0, 1900, 7) if t // 300 != 2]

    async def source() -> AsyncIterator[TranscriptSegment]:
        for seg in segments:
            yield seg

    async def collect() -> list[tuple[str, int]]:
        return [(f.section.label, len(f.segments)) async for f in stream_sections(source(), plan)]

    streamed = asyncio.run(collect())
    expected = [(f.section.label, len(f.segments)) for f in assign_segments(segments, plan)]
    assert streamed == expected
    assert streamed[2] == ("1.3", 0)  # an empty section is still yielded
