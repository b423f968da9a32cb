"""The summarization engine: section calls in parallel, each hour as soon as it can.

Every section call goes out as soon as its section is closed (all at once from captions,
one by one while whisper runs), bounded by ``max_concurrent``. An hour's consolidation
waits only for that hour's own sections. ``sequential`` reproduces the original tool: one
call at a time, in order, with output of the same structure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from yttl.errors import AuthError, ProviderError
from yttl.llm.base import Completion, LLMProvider, Message
from yttl.models import Failure, HourSummary, Section, SectionSummary
from yttl.perf import CallRecord, PerformanceTracker
from yttl.summarize import prompts
from yttl.summarize.sections import FilledSection, SectionPlan

__all__ = ["CallPolicy", "EngineOptions", "ProgressCallback", "SummaryEngine", "direct_call"]

ProgressCallback = Callable[[str, int], None]
"""``("total", n)`` when the expected number of calls grows, ``("done", 1)`` per finished
call or skipped empty section."""


class CallPolicy(Protocol):
    """How one logical call is attempted: the seam where retries and breakers plug in."""

    async def __call__(
        self, label: str, attempt: Callable[[], Awaitable[Completion]]
    ) -> Completion: ...


async def direct_call(label: str, attempt: Callable[[], Awaitable[Completion]]) -> Completion:
    """One attempt, no retry."""
    return await attempt()


@dataclass(frozen=True)
class EngineOptions:
    max_concurrent: int = 4
    sequential: bool = False
    max_output_tokens: int = 512


@dataclass
class _HourState:
    sections: list[asyncio.Future[SectionSummary]]


class SummaryEngine:
    def __init__(
        self,
        provider: LLMProvider,
        options: EngineOptions,
        *,
        tracker: PerformanceTracker | None = None,
        on_progress: ProgressCallback | None = None,
        policy: CallPolicy = direct_call,
    ) -> None:
        self._provider = provider
        self._options = options
        self._tracker = tracker or PerformanceTracker(max_concurrent_llm=options.max_concurrent)
        self._progress = on_progress or (lambda kind, n: None)
        self._policy = policy
        limit = 1 if options.sequential else max(1, options.max_concurrent)
        self._slots = asyncio.Semaphore(limit)
        self._budget = prompts.ContextBudget(provider.context_tokens, options.max_output_tokens)
        self.failures: list[Failure] = []

    async def run(
        self, plan: SectionPlan, sections: AsyncIterable[FilledSection]
    ) -> list[HourSummary]:
        """Summarize every section of ``plan`` as it arrives from ``sections``."""
        self._progress("total", len(plan.sections) + sum(1 for h in plan.hours if len(h) > 1))
        if self._options.sequential:
            return await self._run_sequential(plan, sections)
        return await self._run_parallel(plan, sections)

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

    async def _summarize_section(self, filled: FilledSection) -> SectionSummary:
        section = filled.section
        text = filled.text
        if not text:
            self._progress("done", 1)
            return SectionSummary(section, "", "empty")
        try:
            summary = await self._summarize_text(f"section {section.label}", text, section.title)
        except AuthError:
            raise
        except ProviderError as exc:
            self._fail(f"section {section.label}", exc)
            return SectionSummary(section, "", "failed", error=exc.message)
        return SectionSummary(section, summary, "ok")

    async def _consolidate(
        self, hour: int, plan: SectionPlan, sections: list[SectionSummary]
    ) -> HourSummary:
        start, end = plan.hour_bounds(hour)
        ok = [s for s in sections if s.status == "ok"]
        missing = tuple(s.section.label for s in sections if s.status == "failed")

        def result(summary: str, status: str = "ok") -> HourSummary:
            return HourSummary(
                hour, start, end, summary, "ok" if status == "ok" else "failed",
                tuple(sections), missing,
            )  # fmt: skip

        if len(sections) > 1 and len(ok) <= 1:
            self._progress("done", 1)  # the planned consolidation call is not needed
        if missing and not ok:
            return result("", "failed")
        if len(ok) <= 1:
            return result(ok[0].summary if ok else "")
        try:
            summary = await self._reduce(
                f"hour {hour + 1}", [s.summary for s in ok], prompts.hour_messages,
                prompts.HOUR_SYSTEM,
            )  # fmt: skip
        except AuthError:
            raise
        except ProviderError as exc:
            self._fail(f"hour {hour + 1}", exc)
            return result("", "failed")
        return result(summary)

    async def _summarize_text(self, label: str, text: str, title: str | None) -> str:
        """One call, or (for text beyond the context) a call per part and a merge."""
        parts = prompts.split_text(text, self._budget.input_tokens(prompts.SECTION_SYSTEM))
        if len(parts) == 1:
            return await self._call(label, prompts.section_messages(text, title))
        self._progress("total", len(parts))
        summaries = await self._gather(
            self._call(f"{label} part {i + 1}", prompts.section_messages(part, title))
            for i, part in enumerate(parts)
        )
        return await self._reduce(label, summaries, prompts.merge_messages, prompts.MERGE_SYSTEM)

    async def _reduce(
        self,
        label: str,
        summaries: list[str],
        final_messages: Callable[[Sequence[str]], list[Message]],
        system_prompt: str,
    ) -> str:
        """Combine summaries with one call; merge groups first when they do not fit in one."""
        budget = self._budget.input_tokens(system_prompt)
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
                self._call(f"{label} merge", prompts.merge_messages(g)) if len(g) > 1
                else _ready(g[0])
                for g in groups
            )  # fmt: skip

    async def _gather(self, calls: object) -> list[str]:
        awaitables: list[Awaitable[str]] = list(calls)  # type: ignore[call-overload]
        if self._options.sequential:
            return [await a for a in awaitables]
        return list(await asyncio.gather(*awaitables))

    async def _call(self, label: str, messages: list[Message]) -> str:
        async def attempt() -> Completion:
            async with self._slots:
                start = time.perf_counter()
                ok = False
                completion: Completion | None = None
                try:
                    completion = await self._provider.complete(
                        messages, max_tokens=self._options.max_output_tokens
                    )
                    ok = True
                    return completion
                finally:
                    self._tracker.record_call(
                        CallRecord(
                            label, start, time.perf_counter(),
                            completion.prompt_tokens if completion else 0,
                            completion.completion_tokens if completion else 0, ok,
                        )
                    )  # fmt: skip

        completion = await self._policy(label, attempt)
        self._progress("done", 1)
        return completion.text

    def _fail(self, where: str, exc: ProviderError) -> None:
        self._tracker.error(exc.category)
        self.failures.append(Failure(where, exc.category, exc.message, 1))
        self._progress("done", 1)


async def _ready(value: str) -> str:
    return value
