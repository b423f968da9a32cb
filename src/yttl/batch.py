"""Many videos through one scheduler: ``run_batch``.

Every video of a batch shares the run's ``RunComponents``: one scheduler (so the
provider's slots, pacing and breaker hold for all of them together), one Whisper model,
one cache. ``max_concurrent_videos`` bounds the videos being resolved, downloaded and
transcribed at once; once a video's transcript is complete it gives its place to the
next one while its summaries finish. One bad video never stops the others; a model the
provider does not have, or a refused key, stops them all (no call could succeed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from yttl.errors import AuthError, ModelNotFoundError, RunInterrupted, YttlError
from yttl.exitcodes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    exit_code_for,
    worst_exit,
)
from yttl.factory import RunComponents
from yttl.models import RunResult
from yttl.perf import PerformanceTracker
from yttl.pipeline import NullObserver, RunObserver, process_video
from yttl.sources.playlists import BatchEntry

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "BatchObserver",
    "VideoOutcome",
    "VideoStatus",
    "Writer",
    "ended_or_interrupted",
    "exit_code_for",
    "not_started",
    "outcome_of",
    "run_batch",
    "without_transcript",
    "worst_exit",
]

logger = logging.getLogger(__name__)

VideoStatus = Literal["ok", "partial", "failed", "interrupted"]


@dataclass
class VideoOutcome:
    """What became of one video of a batch."""

    entry: BatchEntry
    status: VideoStatus
    exit_code: int
    result: RunResult | None = None
    error: YttlError | None = None
    outputs: list[Path] = field(default_factory=list)

    @property
    def sections(self) -> tuple[int, int]:
        """(done, total) sections: ``empty`` ones count as done."""
        if self.result is None:
            return 0, 0
        items = [s for h in self.result.hours for s in h.sections]
        return sum(1 for s in items if s.status != "failed"), len(items)


def without_transcript(result: RunResult) -> RunResult:
    """The result less its transcript segments: what the index and the summary lines
    need, small enough to keep for every video of a long batch."""
    return replace(result, transcript=replace(result.transcript, segments=()))


def outcome_of(entry: BatchEntry, result: RunResult) -> VideoOutcome:
    sections = [s for h in result.hours for s in h.sections]
    if result.interrupted:
        return VideoOutcome(entry, "interrupted", EXIT_INTERRUPTED, result)
    if sections and all(s.status == "failed" for s in sections):
        return VideoOutcome(entry, "failed", EXIT_FAILED, result)  # no summary at all
    if result.partial:
        return VideoOutcome(entry, "partial", EXIT_PARTIAL, result)
    return VideoOutcome(entry, "ok", EXIT_OK, result)


def not_started(entry: BatchEntry, stopping: bool) -> VideoOutcome | None:
    """The outcome of an entry that is not run at all: its source could not even be
    listed, or the batch is stopping; None when it is to be run."""
    if entry.error is not None:
        return VideoOutcome(entry, "failed", exit_code_for(entry.error), error=entry.error)
    if stopping:
        return VideoOutcome(entry, "interrupted", EXIT_INTERRUPTED, error=RunInterrupted())
    return None


def ended_or_interrupted(entries: Sequence[BatchEntry],
                         ended: Sequence[object]) -> list[VideoOutcome]:  # fmt: skip
    """After a second Ctrl-C: each entry's outcome, or ``interrupted`` where it had none."""
    return [
        item if isinstance(item, VideoOutcome)
        else VideoOutcome(entry, "interrupted", EXIT_INTERRUPTED, error=RunInterrupted())
        for entry, item in zip(entries, ended, strict=True)
    ]  # fmt: skip


class BatchObserver(Protocol):
    """What a caller hears of a batch: an observer per video, and each video's end."""

    def video(self, entry: BatchEntry) -> RunObserver: ...

    def finished(self, outcome: VideoOutcome) -> None: ...


class _Silent:
    def video(self, entry: BatchEntry) -> RunObserver:
        return NullObserver()

    def finished(self, outcome: VideoOutcome) -> None:
        pass


Writer = Callable[[RunResult], Awaitable[list[Path]]]


async def run_batch(
    entries: Sequence[BatchEntry],
    components: RunComponents,
    *,
    max_concurrent_videos: int,
    write: Writer | None = None,
    observer: BatchObserver | None = None,
    keep_transcripts: bool = True,
) -> list[VideoOutcome]:
    """Run every entry; each video's outputs are written (``write``) as soon as it ends,
    so a Ctrl-C later loses nothing that was finished. Outcomes come in entry order;
    without ``keep_transcripts`` their results drop the transcript once it is written."""
    observer = observer or _Silent()
    settings = components.settings
    slot = asyncio.Semaphore(max(1, max_concurrent_videos))
    stop = components.scheduler.stop

    async def one(entry: BatchEntry) -> VideoOutcome:
        early = not_started(entry, stop.is_set())
        if early is not None:
            observer.finished(early)
            return early
        try:
            result = await process_video(
                entry.source, settings, components=components, observer=observer.video(entry),
                tracker=PerformanceTracker(), video_slot=slot,
            )  # fmt: skip
            outcome = outcome_of(entry, result)
        except RunInterrupted as exc:
            outcome = VideoOutcome(entry, "interrupted", EXIT_INTERRUPTED, exc.partial, exc)
        except YttlError as exc:
            outcome = VideoOutcome(entry, "failed", exit_code_for(exc), error=exc)
            if isinstance(exc, ModelNotFoundError | AuthError):
                logger.debug("%s: stopping the batch: %s", entry.label, exc.message)
                stop.set()  # no call of any video can succeed
        made = outcome.result
        if (
            write is not None
            and made is not None
            and (made.hours or settings.transcript_only or outcome.status != "interrupted")
        ):
            outcome.outputs = await write(made)
        if made is not None and not keep_transcripts:
            outcome.result = without_transcript(made)
        observer.finished(outcome)
        return outcome

    tasks = [asyncio.create_task(one(entry)) for entry in entries]
    try:
        return list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        # A second Ctrl-C: every video stops now, writes what it finished, and is listed.
        for task in tasks:
            task.cancel()
        return ended_or_interrupted(entries, await asyncio.gather(*tasks, return_exceptions=True))
