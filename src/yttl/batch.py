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

from yttl.errors import FATAL_ERRORS, ProcessingError, ProviderError, RunInterrupted, YttlError
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
    "NotStarted",
    "VideoOutcome",
    "VideoStatus",
    "Writer",
    "ended_or_interrupted",
    "error_outcome",
    "exit_code_for",
    "isolated",
    "not_started",
    "outcome_of",
    "run_batch",
    "settle_halted",
    "silent_observer",
    "stopped_outcome",
    "unexpected",
    "without_transcript",
    "worst_exit",
    "worth_writing",
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


def error_outcome(entry: BatchEntry, error: YttlError) -> VideoOutcome:
    """A video an error ended: failed with the error's code, or partial when some
    sections were summarized before it; what it made (``error.partial``) is written."""
    made = error.partial
    if made is not None and made.summarized:
        return VideoOutcome(entry, "partial", EXIT_PARTIAL, made, error)
    return VideoOutcome(entry, "failed", exit_code_for(error), made, error)


def worth_writing(outcome: VideoOutcome) -> bool:
    """Whether a video's outputs are written: always when it ended; when it was
    interrupted, only if it made something (a transcript line, a summary). An output is
    never an empty file standing for work that was not done."""
    made = outcome.result
    if made is None:
        return False
    if outcome.status != "interrupted":
        return True
    return bool(made.transcript.segments) or made.summarized


class NotStarted(YttlError):
    """A video the batch never ran, because an answer stopped it (``halted``)."""

    def __init__(self, reason: ProviderError, *, started: bool = False) -> None:
        super().__init__(
            f"{'stopped' if started else 'not started'}: {reason.message}", hint=reason.hint
        )
        self.category = reason.category
        self.reason = reason


def stopped_outcome(
    entry: BatchEntry, halted: ProviderError | None, partial: RunResult | None = None
) -> VideoOutcome:
    """A video the batch stopped: interrupted after a Ctrl-C, *not started* (failed with
    the reason's exit code) after an answer that no call could get past."""
    if halted is None:
        return VideoOutcome(
            entry, "interrupted", EXIT_INTERRUPTED, partial, RunInterrupted(partial)
        )
    return VideoOutcome(
        entry,
        "failed",
        exit_code_for(halted),
        partial,
        NotStarted(halted, started=partial is not None),
    )


def not_started(
    entry: BatchEntry, stopping: bool, halted: ProviderError | None = None
) -> VideoOutcome | None:
    """The outcome of an entry that is not run at all: its source could not even be
    listed, or the batch is stopping; None when it is to be run."""
    if entry.error is not None:
        return VideoOutcome(entry, "failed", exit_code_for(entry.error), error=entry.error)
    if stopping:
        return stopped_outcome(entry, halted)
    return None


def unexpected(entry: BatchEntry, exc: BaseException, doing: str = "") -> VideoOutcome:
    """Whatever one video raised that yttl did not mean to (a bug, a full disk, a locked
    library) fails that video alone; the traceback is kept for ``--verbose``."""
    if isinstance(exc, OSError):
        named = exc.filename2 or exc.filename  # a rename names its target second
        message = f"{doing or 'failed'}: {exc.strerror or exc}" + (f" ({named})" if named else "")
    else:
        message = f"{doing or 'internal error'}: {type(exc).__name__}: {exc}"
    error = ProcessingError(message, hint="rerun the same command to retry this video")
    error.__cause__ = exc
    error.__traceback__ = exc.__traceback__
    logger.debug("%s: %s", entry.label, message, exc_info=exc)
    return VideoOutcome(entry, "failed", exit_code_for(error), error=error)


def ended_or_interrupted(
    entries: Sequence[BatchEntry], ended: Sequence[object], halted: ProviderError | None = None
) -> list[VideoOutcome]:
    """After a second Ctrl-C: each entry's outcome, or ``interrupted`` where it had none."""
    outcomes = []
    for entry, item in zip(entries, ended, strict=True):
        if isinstance(item, VideoOutcome):
            outcomes.append(item)
        elif isinstance(item, BaseException) and not isinstance(
            item, asyncio.CancelledError | KeyboardInterrupt | RunInterrupted
        ):
            outcomes.append(unexpected(entry, item))
        else:
            outcomes.append(stopped_outcome(entry, halted))
    return outcomes


def settle_halted(outcomes: list[VideoOutcome], halted: ProviderError | None) -> None:
    """After an answer stopped the batch, the videos it cut short were not interrupted by
    anyone: they failed for that reason (exit 2 for an unknown model, 1 otherwise)."""
    if halted is None:
        return
    for i, outcome in enumerate(outcomes):
        if outcome.status == "interrupted":
            outcomes[i] = stopped_outcome(outcome.entry, halted, outcome.result)
            outcomes[i].outputs = outcome.outputs


class BatchObserver(Protocol):
    """What a caller hears of a batch: an observer per video, and each video's end."""

    def video(self, entry: BatchEntry) -> RunObserver: ...

    def finished(self, outcome: VideoOutcome) -> None: ...


class _Silent:
    """Hears nothing: for callers with nobody to show progress to."""

    def video(self, entry: BatchEntry) -> RunObserver:
        return NullObserver()

    def finished(self, outcome: VideoOutcome) -> None:
        pass


def silent_observer() -> BatchObserver:
    return _Silent()


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
    scheduler = components.scheduler

    async def run(entry: BatchEntry) -> VideoOutcome:
        early = not_started(entry, scheduler.stop.is_set(), scheduler.halted)
        if early is not None:
            return early
        try:
            result = await process_video(
                entry.source,
                settings,
                components=components,
                observer=observer.video(entry),
                tracker=PerformanceTracker(),
                video_slot=slot,
            )
            return outcome_of(entry, result)
        except RunInterrupted as exc:
            return VideoOutcome(entry, "interrupted", EXIT_INTERRUPTED, exc.partial, exc)
        except YttlError as exc:
            if isinstance(exc, FATAL_ERRORS):
                logger.debug("%s: stopping the batch: %s", entry.label, exc.message)
                scheduler.halt(exc)  # no call of any video can succeed
            return error_outcome(entry, exc)

    async def one(entry: BatchEntry) -> VideoOutcome:
        return await isolated(entry, run, write, observer, keep_transcripts=keep_transcripts)

    tasks = [asyncio.create_task(one(entry)) for entry in entries]
    try:
        outcomes = list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:
        # A second Ctrl-C: every video stops now, writes what it finished, and is listed.
        for task in tasks:
            task.cancel()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
        outcomes = ended_or_interrupted(entries, ended, scheduler.halted)
    settle_halted(outcomes, scheduler.halted)
    return outcomes


async def isolated(
    entry: BatchEntry,
    run: Callable[[BatchEntry], Awaitable[VideoOutcome]],
    write: Writer | None,
    observer: BatchObserver,
    *,
    keep_transcripts: bool = False,
) -> VideoOutcome:
    """One video of a batch, whatever it raises: run it, write what it made (a full disk
    or a locked library fails it alone), tell the observer. Ctrl-C still goes through."""
    try:
        outcome = await run(entry)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        outcome = unexpected(entry, exc)
    made = outcome.result
    if write is not None and made is not None and worth_writing(outcome):
        try:
            outcome.outputs = await write(made)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            failed = unexpected(entry, exc, "could not write or record it")
            outcome.status, outcome.exit_code, outcome.error = (
                failed.status,
                failed.exit_code,
                failed.error,
            )
    if made is not None and not keep_transcripts:
        outcome.result = without_transcript(made)
    _tell(observer, outcome)
    return outcome


def _tell(observer: BatchObserver, outcome: VideoOutcome) -> None:
    try:
        observer.finished(outcome)
    except Exception:  # a display's fault must not lose the video
        logger.debug("the observer failed on %s", outcome.entry.label, exc_info=True)
