from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from tests.support.fakes import RecordedCall, RecordingProvider
from yttl.errors import AuthError, RateLimitError
from yttl.models import HourSummary, TranscriptSegment
from yttl.perf import PerformanceTracker
from yttl.summarize.engine import EngineOptions, SummaryEngine
from yttl.summarize.prompts import estimate_tokens
from yttl.summarize.sections import FilledSection, SectionPlan, assign_segments, plan_fixed


def _segments(
    duration: float, empty: Sequence[int] = (), words: int = 40
) -> list[TranscriptSegment]:
    """A line every 10 s except inside the (0-based, global) sections in ``empty``."""
    text = " ".join(f"word{i}." for i in range(words))
    return [TranscriptSegment(t, t + 10, text) for t in range(0, int(duration), 10)
            if int(t // 300) not in empty]  # fmt: skip


async def _feed(filled: list[FilledSection], delays: dict[int, float] | None = None,
                ) -> AsyncIterator[FilledSection]:  # fmt: skip
    for i, item in enumerate(filled):
        if delays and i in delays:
            await asyncio.sleep(delays[i])
        yield item


def _run(
    provider: RecordingProvider,
    plan: SectionPlan,
    segments: list[TranscriptSegment],
    options: EngineOptions,
    progress: list[tuple[str, int]] | None = None,
) -> tuple[list[HourSummary], SummaryEngine, PerformanceTracker]:
    tracker = PerformanceTracker(max_concurrent_llm=options.max_concurrent)
    engine = SummaryEngine(
        provider, options, tracker=tracker,
        on_progress=(lambda kind, n: progress.append((kind, n))) if progress is not None else None,
    )  # fmt: skip
    filled = assign_segments(segments, plan)
    hours = asyncio.run(engine.run(plan, _feed(filled)))
    return hours, engine, tracker


def _shape(hours: list[HourSummary]) -> list[tuple[object, ...]]:
    return [
        (h.index, h.start, h.end, h.status, bool(h.summary),
         tuple((s.section.label, s.status, bool(s.summary)) for s in h.sections))
        for h in hours
    ]  # fmt: skip


@pytest.mark.parametrize("limit", [1, 3, 8, 32])
def test_the_concurrency_bound_is_never_exceeded_and_is_reached(limit: int) -> None:
    provider = RecordingProvider(latency=lambda call: 0.02)
    plan = plan_fixed(7200)
    hours, _, tracker = _run(provider, plan, _segments(7200), EngineOptions(max_concurrent=limit))
    assert provider.max_in_flight == min(limit, 24)
    assert tracker.stats()["max_in_flight"] == provider.max_in_flight
    assert len(provider.calls) == 24 + 2 + 1  # sections, hours, the overview
    assert [h.status for h in hours] == ["ok", "ok"]


def test_an_hour_waits_only_for_its_own_sections() -> None:
    # Hour 2's sections are slow; hour 1's summary must not wait for them.
    def latency(call: RecordedCall) -> float:
        return (
            0.4 if "word" in call.user and call.kind == "section" and "slow" in call.user else 0.02
        )

    plan = plan_fixed(7200)
    segments = _segments(7200)
    segments = [TranscriptSegment(s.start, s.end, s.text + (" slow" if s.start >= 3600 else ""))
                for s in segments]  # fmt: skip
    provider = RecordingProvider(latency=latency)
    _run(provider, plan, segments, EngineOptions(max_concurrent=24))
    hour_calls = [c for c in provider.calls if c.kind == "hour"]
    slow_ends = [c.end for c in provider.calls if c.kind == "section" and "slow" in c.user]
    first_hour = next(c for c in hour_calls if "slow" not in c.user)
    assert len(hour_calls) == 2
    assert first_hour.end < min(slow_ends)  # done while hour 2's sections still ran


def test_sequential_runs_one_call_at_a_time_in_order_with_the_same_structure() -> None:
    plan = plan_fixed(7500)
    segments = _segments(7500, empty=[3])
    parallel, _, _ = _run(RecordingProvider(), plan, segments, EngineOptions(max_concurrent=8))
    provider = RecordingProvider()
    sequential, _, _ = _run(provider, plan, segments,
                            EngineOptions(max_concurrent=8, sequential=True))  # fmt: skip
    assert _shape(parallel) == _shape(sequential)
    assert provider.max_in_flight == 1
    kinds = [c.kind for c in provider.calls]
    # hour 1's 11 non-empty sections, its summary, hour 2's 12 and summary, hour 3's single
    # one, and the overview from the three hours
    assert kinds == ["section"] * 11 + ["hour"] + ["section"] * 12 + ["hour"] + ["section"] + [
        "overview"]  # fmt: skip
    for a, b in zip(provider.calls, provider.calls[1:], strict=False):
        assert a.end <= b.start


def test_empty_sections_cost_no_call_and_single_section_hours_no_consolidation() -> None:
    plan = plan_fixed(3900)  # 12 sections, then one 300 s section in hour 2
    segments = _segments(3900, empty=[0, 5])
    provider = RecordingProvider()
    progress: list[tuple[str, int]] = []
    hours, _, _ = _run(provider, plan, segments, EngineOptions(max_concurrent=4), progress)
    statuses = [s.status for h in hours for s in h.sections]
    assert statuses.count("empty") == 2
    assert len([c for c in provider.calls if c.kind == "section"]) == 11
    assert len([c for c in provider.calls if c.kind == "hour"]) == 1
    assert hours[1].summary == hours[1].sections[0].summary  # no separate call
    assert len([c for c in provider.calls if c.kind == "overview"]) == 1  # over an hour
    total = sum(n for kind, n in progress if kind == "total")
    done = sum(n for kind, n in progress if kind == "done")
    assert total == done == 13 + 1 + 1


def test_a_transcript_beyond_the_context_is_split_and_merged_within_bounds() -> None:
    provider = RecordingProvider(context_tokens=1500)
    plan = plan_fixed(600)
    segments = _segments(600, words=400)  # ~30 lines of 400 words per section
    hours, _, _ = _run(provider, plan, segments, EngineOptions(max_concurrent=4,
                                                               max_output_tokens=200))  # fmt: skip
    kinds = [c.kind for c in provider.calls]
    assert kinds.count("section") > 2 and kinds.count("merge") >= 2
    assert kinds.count("hour") == 1
    assert all(s.status == "ok" for s in hours[0].sections)
    # every word of the transcript reached some section call exactly once
    sent = " ".join(c.user for c in provider.calls if c.kind == "section")
    assert sent.count("word399.") == len(segments)


def test_consolidation_prompts_stay_within_a_small_context() -> None:
    # Long section summaries force the hour's consolidation to merge in groups first.
    class Verbose(RecordingProvider):
        async def complete(self, messages, *, max_tokens):  # type: ignore[no-untyped-def]
            completion = await super().complete(messages, max_tokens=max_tokens)
            return type(completion)("x " * 300, completion.prompt_tokens, 300)

    provider = Verbose(context_tokens=1200)
    plan = plan_fixed(3600)
    hours, _, _ = _run(provider, plan, _segments(3600, words=10),
                       EngineOptions(max_concurrent=8, max_output_tokens=300))  # fmt: skip
    kinds = [c.kind for c in provider.calls]
    assert kinds.count("merge") >= 1 and kinds.count("hour") == 1
    assert hours[0].status == "ok"
    for call in provider.calls:
        assert sum(estimate_tokens(m.content) for m in call.messages) + 300 <= 1200


def test_a_failing_section_is_isolated_and_named_in_its_hour() -> None:
    def fail(call: RecordedCall) -> RateLimitError | None:
        return RateLimitError("fake: rate limited") if "word7." in call.user and \
            call.kind == "section" and "w300 " in call.user else None  # fmt: skip

    plan = plan_fixed(3600)
    segments = [TranscriptSegment(s.start, s.end, f"w{int(s.start)} {s.text}")
                for s in _segments(3600, words=10)]  # fmt: skip
    provider = RecordingProvider(fail=fail)
    hours, engine, tracker = _run(provider, plan, segments, EngineOptions(max_concurrent=4))
    failed = [s for s in hours[0].sections if s.status == "failed"]
    assert [s.section.label for s in failed] == ["1.2"]
    assert hours[0].status == "ok" and hours[0].missing == ("1.2",)
    hour_call = next(c for c in provider.calls if c.kind == "hour")
    assert hour_call.user.count("[") == 11  # made from the 11 that succeeded
    assert [(f.where, f.category) for f in engine.failures] == [("section 1.2", "rate_limit")]
    assert tracker.stats()["errors"] == {"rate_limit": 1}


def test_an_auth_error_stops_the_run() -> None:
    provider = RecordingProvider(fail=lambda call: AuthError("fake: key refused"))
    with pytest.raises(AuthError):
        _run(provider, plan_fixed(1200), _segments(1200), EngineOptions(max_concurrent=2))


def test_sections_start_as_soon_as_they_arrive() -> None:
    provider = RecordingProvider(latency=lambda call: 0.01)
    plan = plan_fixed(1500)
    filled = assign_segments(_segments(1500), plan)
    engine = SummaryEngine(provider, EngineOptions(max_concurrent=8))

    async def main() -> float:
        start = asyncio.get_running_loop().time()
        await engine.run(plan, _feed(filled, delays={4: 0.5}))
        return start

    asyncio.run(main())
    first_four = [c for c in provider.calls[:4]]
    last = provider.calls[4]
    assert all(c.end < last.start - 0.3 for c in first_four)  # they did not wait for the feed
