"""The summarization engine: section calls in parallel, each hour as soon as it can.

Every section call goes out as soon as its section is closed (all at once from captions,
one by one while whisper runs), bounded by ``max_concurrent``. An hour's consolidation
waits only for that hour's own sections. ``sequential`` reproduces the original tool: one
call at a time, in order, with output of the same structure.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from yttl.cache import ResultsCache
from yttl.errors import FATAL_ERRORS, ContextLengthError, ProviderError
from yttl.llm.base import LLMProvider, Message
from yttl.models import Chapter, Failure, HourSummary, Section, SectionSummary, Slide
from yttl.perf import PerformanceTracker
from yttl.resilience import RetryPolicy
from yttl.scheduler import CallPolicy, Lane, direct_call
from yttl.summarize import prompts
from yttl.summarize.calls import CallRunner, Route
from yttl.summarize.sections import FilledSection, SectionPlan

__all__ = [
    "CallPolicy",
    "EngineOptions",
    "ProgressCallback",
    "SlideSource",
    "SummaryEngine",
    "direct_call",
]

INTERRUPTED = "interrupted before it was summarized"

ProgressCallback = Callable[[str, int], None]
"""``("total", n)`` when the expected number of calls grows, ``("done", 1)`` per finished
call or skipped empty section."""


class SlideSource(Protocol):
    """The slides of the video (``yttl.slides.SlideStage``), as far as they are known."""

    async def within(self, start: float, end: float) -> Sequence[Slide]:
        """The slides shown in ``[start, end)``; waits until those are known."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    max_concurrent: int = 4
    sequential: bool = False
    max_output_tokens: int = 512
    overview: bool = True  # one more call, from the hour summaries, for videos over an hour


class SummaryEngine:
    def __init__(
        self,
        provider: LLMProvider,
        options: EngineOptions,
        *,
        tracker: PerformanceTracker | None = None,
        on_progress: ProgressCallback | None = None,
        policy: CallPolicy | None = None,
        fallback: Route | None = None,
        cache: ResultsCache | None = None,
        stop: asyncio.Event | None = None,
        prompt_context: prompts.PromptContext | None = None,
        chapters: Sequence[Chapter] = (),
        slides: SlideSource | None = None,
    ) -> None:
        self._options = options
        self._slides = slides
        self._context = prompt_context or prompts.PromptContext()
        self._chapters = tuple(chapters)
        self.overview: str | None = None
        self._tracker = tracker or PerformanceTracker(max_concurrent_llm=options.max_concurrent)
        self._progress = on_progress or (lambda kind, n: None)
        if policy is None:  # on its own (no scheduler): just the bound, one attempt a call
            limit = 1 if options.sequential else options.max_concurrent
            once = RetryPolicy(max_attempts=1, rate_limit_attempts=1, timeout=None)
            policy = Lane(provider.name, max_concurrent=limit, policy=once, stop=stop)
        self._calls = CallRunner(
            Route(provider, policy),
            tracker=self._tracker,
            max_output_tokens=options.max_output_tokens,
            fallback=fallback,
            cache=cache,
            stop=stop,
        )
        context = provider.context_tokens
        if fallback is not None:  # a prompt must fit whichever provider ends up taking it
            context = min(context, fallback.provider.context_tokens)
        self._budget = prompts.ContextBudget(context, options.max_output_tokens)
        # the video's context must not crowd out the transcript in a small model's window:
        # without the description when it would take more than a tenth of the input
        room = self._budget.input_tokens("")
        if prompts.estimate_tokens(self._context.header()) > room // 10:
            self._context = dataclasses.replace(self._context, description=None)
        self.failures: list[Failure] = []
        self.finished: dict[Section, SectionSummary] = {}
        self.finished_hours: dict[int, HourSummary] = {}

    async def run(
        self, plan: SectionPlan, sections: AsyncIterable[FilledSection]
    ) -> list[HourSummary]:
        """Summarize every section of ``plan`` as it arrives from ``sections``."""
        overview = self._options.overview and len(plan.hours) > 1
        self._progress(
            "total", len(plan.sections) + sum(1 for h in plan.hours if len(h) > 1) + int(overview)
        )
        if self._options.sequential:
            hours = await self._run_sequential(plan, sections)
        else:
            hours = await self._run_parallel(plan, sections)
        if overview:  # as soon as the last hour is done: one call on the critical path
            self.overview = await self._overview(hours)
        return hours

    async def _overview(self, hours: Sequence[HourSummary]) -> str | None:
        summaries = [h.summary for h in hours if h.summary]
        if len(summaries) < 2 or self._calls.stopping:
            self._progress("done", 1)
            return None
        try:
            return await self._reduce(
                "overview",
                summaries,
                lambda s: prompts.overview_messages(s, self._context),
                prompts.OVERVIEW_SYSTEM,
            )
        except FATAL_ERRORS:
            raise
        except ProviderError as exc:
            self._fail("overview", exc)
            return None

    async def _run_parallel(
        self, plan: SectionPlan, sections: AsyncIterable[FilledSection]
    ) -> list[HourSummary]:
        loop = asyncio.get_running_loop()
        futures: dict[Section, asyncio.Future[SectionSummary]] = {
            s: loop.create_future() for s in plan.sections
        }
        section_tasks: list[asyncio.Task[None]] = []

        async def fill(filled: FilledSection) -> None:
            future = futures[filled.section]
            try:
                future.set_result(await self._summarize_section(filled))
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:  # surfaces through the hour task that awaits it
                future.set_exception(exc)

        hour_tasks = [
            asyncio.create_task(self._summarize_hour(h, plan, [futures[s] for s in hour]))
            for h, hour in enumerate(plan.hours)
        ]
        try:
            async for filled in sections:
                section_tasks.append(asyncio.create_task(fill(filled)))
            return list(await asyncio.gather(*hour_tasks))
        except BaseException:
            for task in [*section_tasks, *hour_tasks]:
                task.cancel()
            await asyncio.gather(*section_tasks, *hour_tasks, return_exceptions=True)
            raise

    async def _run_sequential(
        self, plan: SectionPlan, sections: AsyncIterable[FilledSection]
    ) -> list[HourSummary]:
        done: dict[int, list[SectionSummary]] = {h: [] for h in range(len(plan.hours))}
        results: list[HourSummary] = []
        async for filled in sections:
            hour = filled.section.hour
            done[hour].append(await self._summarize_section(filled))
            if len(done[hour]) == len(plan.hours[hour]):
                results.append(await self._consolidate(hour, plan, done[hour]))
        return results

    async def _summarize_hour(
        self, hour: int, plan: SectionPlan, futures: Sequence[asyncio.Future[SectionSummary]]
    ) -> HourSummary:
        summaries = list(await asyncio.gather(*futures))
        return await self._consolidate(hour, plan, summaries)

    async def _consolidate(
        self, hour: int, plan: SectionPlan, sections: list[SectionSummary]
    ) -> HourSummary:
        result = await self._hour_result(hour, plan, sections)
        self.finished_hours[hour] = result
        return result

    async def _summarize_section(self, filled: FilledSection) -> SectionSummary:
        result = await self._section_result(filled)
        self.finished[filled.section] = result
        return result

    async def _section_result(self, filled: FilledSection) -> SectionSummary:
        section = filled.section
        if self._calls.stopping:  # said in the failures too: the run reads as interrupted
            self.failures.append(Failure(f"section {section.label}", "interrupted", INTERRUPTED))
            return SectionSummary(section, "", "failed", error=INTERRUPTED)
        if filled.missing is not None:  # the transcription stopped before its end
            self.failures.append(
                Failure(f"section {section.label}", "transcription", filled.missing)
            )
            self._progress("done", 1)
            return SectionSummary(section, "", "failed", error=filled.missing)
        text = filled.text
        if not text:
            self._progress("done", 1)
            return SectionSummary(section, "", "empty")
        label = f"section {section.label}"
        chapters = [
            c.title
            for c in self._chapters
            if c.title and c.start < section.end and c.end > section.start
        ]
        slides: list[str] = []
        if self._slides is not None:
            slides = [s.text for s in await self._slides.within(section.start, section.end)]
        for share in (1.0, 0.5, 0.25):  # after a context-length error, smaller parts
            try:
                summary = await self._summarize_text(
                    label, text, section.title, share, chapters, slides
                )
            except FATAL_ERRORS:
                raise
            except ContextLengthError as exc:
                if share > 0.25:
                    continue
                self._fail(label, exc)
                return SectionSummary(section, "", "failed", error=exc.message)
            except ProviderError as exc:
                self._fail(label, exc)
                return SectionSummary(section, "", "failed", error=exc.message)
            return SectionSummary(section, summary, "ok")
        raise AssertionError("unreachable")  # pragma: no cover

    def snapshot(self, plan: SectionPlan, reason: str = INTERRUPTED) -> list[HourSummary]:
        """What is finished so far, with every unfinished section marked failed: for
        writing partial output when a run is interrupted."""
        hours = []
        for h, sections in enumerate(plan.hours):
            if h in self.finished_hours:
                hours.append(self.finished_hours[h])
                continue
            items = tuple(
                self.finished.get(s) or SectionSummary(s, "", "failed", error=reason)
                for s in sections
            )
            start, end = plan.hour_bounds(h)
            missing = tuple(i.section.label for i in items if i.status == "failed")
            ok = [i for i in items if i.status == "ok"]
            summary = ok[0].summary if len(sections) == 1 and ok else ""
            status = "ok" if summary or not missing else "failed"
            hours.append(HourSummary(h, start, end, summary, status, items, missing))  # type: ignore[arg-type]
        return hours

    async def _hour_result(
        self, hour: int, plan: SectionPlan, sections: list[SectionSummary]
    ) -> HourSummary:
        start, end = plan.hour_bounds(hour)
        ok = [s for s in sections if s.status == "ok"]
        missing = tuple(s.section.label for s in sections if s.status == "failed")

        def result(summary: str, status: str = "ok") -> HourSummary:
            return HourSummary(
                hour,
                start,
                end,
                summary,
                "ok" if status == "ok" else "failed",
                tuple(sections),
                missing,
            )

        if len(sections) > 1 and len(ok) <= 1:
            self._progress("done", 1)  # the planned consolidation call is not needed
        if missing and not ok:
            return result("", "failed")
        if len(ok) <= 1:
            return result(ok[0].summary if ok else "")
        try:
            summary = await self._reduce(
                f"hour {hour + 1}",
                [s.summary for s in ok],
                lambda s: prompts.hour_messages(s, self._context),
                prompts.HOUR_SYSTEM,
            )
        except FATAL_ERRORS:
            raise
        except ProviderError as exc:
            self._fail(f"hour {hour + 1}", exc)
            return result("", "failed")
        return result(summary)

    async def _summarize_text(
        self,
        label: str,
        text: str,
        title: str | None,
        share: float = 1.0,
        chapters: Sequence[str] = (),
        slides: Sequence[str] = (),
    ) -> str:
        """One call, or (for text beyond the context) a call per part and a merge.
        ``share`` shrinks the parts further, after the model refused one as too long."""
        context = self._context

        def messages(part: str) -> list[Message]:
            return prompts.section_messages(part, title, context, chapters, slides)

        # the video's context and the chapter titles count against the budget too
        budget = self._budget.input_tokens(messages("")[0].content + messages("")[1].content)
        if share < 1:  # the model refused: the real limit is below this text, whatever we thought
            budget = min(budget, prompts.estimate_tokens(text))
        parts = prompts.split_text(text, int(budget * share))
        if len(parts) == 1:
            return await self._call(label, messages(text))
        self._progress("total", len(parts))
        summaries = await self._gather(
            self._call(f"{label} part {i + 1}", messages(part)) for i, part in enumerate(parts)
        )
        return await self._reduce(
            label, summaries, lambda s: prompts.merge_messages(s, context), prompts.MERGE_SYSTEM
        )

    async def _reduce(
        self,
        label: str,
        summaries: list[str],
        final_messages: Callable[[Sequence[str]], list[Message]],
        system_prompt: str,
    ) -> str:
        """Combine summaries with one call; merge groups first when they do not fit in one."""
        budget = self._budget.input_tokens(system_prompt + self._context.header())
        while True:
            groups = prompts.group_within(summaries, budget)
            if len(groups) == 1:
                return await self._call(label, final_messages(groups[0]))
            if all(len(g) == 1 for g in groups):  # each alone is too big: trim them
                share = max(budget // len(summaries), 16)
                summaries = [prompts.split_text(s, share)[0] for s in summaries]
                continue
            self._progress("total", sum(1 for g in groups if len(g) > 1))
            summaries = await self._gather(
                self._call(f"{label} merge", prompts.merge_messages(g, self._context))
                if len(g) > 1
                else _ready(g[0])
                for g in groups
            )

    async def _gather(self, calls: object) -> list[str]:
        awaitables: list[Awaitable[str]] = list(calls)  # type: ignore[call-overload]
        if self._options.sequential:
            return [await a for a in awaitables]
        return list(await asyncio.gather(*awaitables))

    async def _call(self, label: str, messages: list[Message]) -> str:
        text = await self._calls(label, messages)
        self._progress("done", 1)
        return text

    def _fail(self, where: str, exc: ProviderError) -> None:
        self.failures.append(Failure(where, exc.category, exc.message, exc.attempts))
        self._progress("done", 1)


async def _ready(value: str) -> str:
    return value
