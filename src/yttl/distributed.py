"""Batches past one machine, on Ray (``--executor ray``; the ``yttl[ray]`` extra).

Each video runs as a Ray task, through the same ``process_video`` as at home. What must
stay one for the whole cluster lives in actors:
- ``BudgetActor`` holds every provider's admission (slots, breaker, pacing): a worker's
  lane asks it before each attempt and tells it how the attempt went, so the cluster
  keeps one provider limit, as one process would.
- ``WhisperActor`` loads the Whisper model once (and may ask for GPUs); a worker streams
  a video's audio to it and gets segments back as they are made.
Outputs, the index and the library are written by the driver, from the results the
tasks return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from yttl.batch import (
    EXIT_INTERRUPTED,
    BatchObserver,
    VideoOutcome,
    Writer,
    ended_or_interrupted,
    exit_code_for,
    not_started,
    outcome_of,
    without_transcript,
)
from yttl.cache import CachedChunks
from yttl.config import Settings
from yttl.errors import (
    CircuitOpenError,
    MissingDependencyError,
    RunInterrupted,
    StopRequested,
    YttlError,
)
from yttl.models import RunResult, TranscriptSegment
from yttl.resilience import Outcome
from yttl.scheduler import LaneSpec, LocalAdmission
from yttl.sources.playlists import BatchEntry
from yttl.transcribe.base import ChunkStore, TranscriptionStats

__all__ = ["RayExecutor", "secrets_for"]

logger = logging.getLogger(__name__)
STOP_POLL_SECONDS = 0.5


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "--executor ray needs Ray", hint="pip install 'yttl[ray]'"
        ) from exc
    return ray


class BudgetActor:
    """Every provider's admission for the whole cluster (an async Ray actor)."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._lanes: dict[str, LocalAdmission] = {}
        self.requests = 0  # actor calls, for the traffic it costs

    async def enter(self, key: str, spec: LaneSpec, label: str, tokens: int) -> tuple[str, Any]:
        self.requests += 1
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = LocalAdmission(spec, self._stop)
        try:
            return "ok", await lane.enter(label, tokens)
        except StopRequested as exc:
            return "stopped", exc.message
        except CircuitOpenError as exc:
            return "circuit_open", exc.message

    async def leave(self, key: str, outcome: Outcome, probe: bool, rate_limited: bool) -> None:
        self.requests += 1
        await self._lanes[key].leave(outcome, probe, rate_limited)

    def stop(self) -> None:
        self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> dict[str, Any]:
        lanes = {
            key: {"sent": lane.sent, "max_in_flight": lane.max_in_flight,
                  "breaker_trips": lane.breaker.trips if lane.breaker else 0}
            for key, lane in self._lanes.items()
        }  # fmt: skip
        return {"requests": self.requests, "lanes": lanes}


class RemoteAdmission:
    """A worker's view of one lane of the ``BudgetActor``."""

    def __init__(self, actor: Any, key: str, spec: LaneSpec) -> None:
        self._actor, self._key, self._spec = actor, key, spec

    async def enter(self, label: str, tokens: int) -> bool:
        status, value = await self._actor.enter.remote(self._key, self._spec, label, tokens)
        if status == "stopped":
            raise StopRequested(str(value))
        if status == "circuit_open":
            raise CircuitOpenError(str(value))
        return bool(value)

    async def leave(self, outcome: Outcome, probe: bool, rate_limited: bool) -> None:
        await self._actor.leave.remote(self._key, outcome, probe, rate_limited)


class WhisperActor:
    """One Whisper model for the cluster (a Ray actor, with GPUs if asked for)."""

    def __init__(self, settings: Settings) -> None:
        from yttl.factory import build_transcriber
        from yttl.transcribe.local import WhisperModelHolder

        self._settings = settings
        self._holder = WhisperModelHolder()
        self._build = build_transcriber

    def transcribe(self, audio: bytes, suffix: str,
                   transcript: str | None = None) -> Iterator[tuple[str, Any]]:  # fmt: skip
        """``("segment", (start, end, text))`` as they come, then ``("stats", {...})``.
        With ``transcript`` (its cache key), finished chunks are kept in this node's cache
        as they finish, and a rerun transcribes only what is missing."""
        import threading

        from yttl.factory import build_cache
        from yttl.transcribe.local import FasterWhisperTranscriber

        transcriber = self._build(self._settings, holder=self._holder)
        assert isinstance(transcriber, FasterWhisperTranscriber)
        cache = build_cache(self._settings)
        try:
            chunks = cache.chunk_store(transcript) if transcript else None
            with tempfile.TemporaryDirectory(prefix="yttl-ray-") as work:
                path = Path(work) / f"audio{suffix}"
                path.write_bytes(audio)
                for segment in transcriber.segments(path, threading.Event(), chunks):
                    yield "segment", (segment.start, segment.end, segment.text)
        finally:
            cache.close()
        yield "stats", asdict(transcriber.stats)


class RemoteTranscriber:
    """A worker's transcriber: the audio goes to the ``WhisperActor``, segments stream back.
    Its ``stats`` start as the local settings would make them, so cache keys match."""

    name = "local_whisper"

    def __init__(self, actor: Any, settings: Settings) -> None:
        from yttl.factory import build_transcriber

        self._actor = actor
        self.stats: TranscriptionStats = build_transcriber(settings).stats

    async def transcribe(
        self, audio: Path, chunks: ChunkStore | None = None
    ) -> AsyncIterator[TranscriptSegment]:
        # the actor keeps finished chunks in its own node's cache, under the same key
        transcript = chunks.transcript if isinstance(chunks, CachedChunks) else None
        data = await asyncio.to_thread(audio.read_bytes)
        stream = self._actor.transcribe.options(num_returns="streaming").remote(
            data, audio.suffix, transcript
        )
        async for ref in stream:
            kind, value = await ref
            if kind == "segment":
                yield TranscriptSegment(*value)
            else:
                self.stats = TranscriptionStats(**value)


def _run_video(entry: BatchEntry, settings: Settings, budget: Any,
               whisper: Any) -> tuple[str, Any]:  # fmt: skip
    """The body of a video's Ray task: ``("result", RunResult)``, ``("interrupted",
    RunResult | None)`` or ``("error", (exit code, category, message, hint))``."""
    from yttl.factory import build_components
    from yttl.perf import PerformanceTracker
    from yttl.pipeline import process_video

    async def main() -> tuple[str, Any]:
        stop = asyncio.Event()

        async def watch() -> None:  # Ctrl-C at the driver reaches every worker
            while not stop.is_set():
                if await budget.stopped.remote():
                    stop.set()
                await asyncio.sleep(STOP_POLL_SECONDS)

        watcher = asyncio.create_task(watch())
        try:
            components = build_components(settings, stop=stop)
            components.admissions = lambda key, spec, _: RemoteAdmission(budget, key, spec)
            components.transcribers = lambda: RemoteTranscriber(whisper, settings)
            try:
                result = await process_video(entry.source, settings, components=components,
                                             tracker=PerformanceTracker())  # fmt: skip
            finally:
                await components.aclose()
            return "result", result
        except RunInterrupted as exc:
            return "interrupted", exc.partial
        except YttlError as exc:
            return "error", (exit_code_for(exc), exc.category, exc.message, exc.hint,
                             type(exc).__name__)  # fmt: skip
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    return asyncio.run(main())


class _RemoteError(YttlError):
    """An error a worker reported, with its category kept."""

    def __init__(self, category: str, message: str, hint: str | None) -> None:
        super().__init__(message, hint=hint)
        self.category = category


def secrets_for(settings: Settings, environ: dict[str, str]) -> dict[str, str]:
    """The environment a worker needs: the keys (and ``YTTL_`` settings are passed as
    ``Settings`` already). Only variables that name a key, no others."""
    wanted = {k for k in environ if k.endswith(("_API_KEY", "_TOKEN"))}
    return {k: environ[k] for k in wanted}


class RayExecutor:
    """Runs a batch's videos as Ray tasks; the driver keeps outputs and the index."""

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        self._settings = settings
        self._address = address
        self._ray = _ray()
        self.budget_stats: dict[str, Any] = {}

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        env = {"env_vars": secrets_for(self._settings, dict(os.environ))}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING, "runtime_env": env}  # fmt: skip
        if self._address:
            ray.init(address=self._address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)

    async def run(
        self,
        entries: Sequence[BatchEntry],
        *,
        stop: asyncio.Event,
        max_concurrent_videos: int,
        write: Writer | None,
        observer: BatchObserver,
    ) -> list[VideoOutcome]:
        ray = self._ray
        await asyncio.to_thread(self._connect)
        budget = ray.remote(num_cpus=0)(BudgetActor).remote()
        gpus = self._settings.ray_whisper_gpus
        whisper = ray.remote(num_cpus=0 if gpus else 1, num_gpus=gpus)(WhisperActor).remote(
            self._settings
        )
        task = ray.remote(num_cpus=0.5, max_retries=0)(_run_video)
        slots = asyncio.Semaphore(max(1, max_concurrent_videos))
        pending: list[Any] = []

        async def relay_stop() -> None:
            await stop.wait()
            await budget.stop.remote()

        async def one(entry: BatchEntry) -> VideoOutcome:
            early = not_started(entry, False)  # a source that failed: no slot needed
            if early is not None:
                observer.finished(early)
                return early
            async with slots:
                early = not_started(entry, stop.is_set())
                if early is not None:
                    observer.finished(early)
                    return early
                line = observer.video(entry)
                line.phase("running on Ray")
                ref = task.remote(entry, self._settings, budget, whisper)
                pending.append(ref)
                kind, value = await ref
            outcome = self._outcome(entry, kind, value)
            if write is not None and outcome.result is not None:
                outcome.outputs = await write(outcome.result)
                outcome.result = without_transcript(outcome.result)
            observer.finished(outcome)
            return outcome

        relay = asyncio.create_task(relay_stop())
        tasks = [asyncio.create_task(one(entry)) for entry in entries]
        try:
            return list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:  # a second Ctrl-C: end the tasks now
            for ref in pending:
                ray.cancel(ref, force=True)
            for each in tasks:
                each.cancel()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
            return ended_or_interrupted(entries, ended)
        finally:
            relay.cancel()
            with contextlib.suppress(Exception):
                self.budget_stats = await budget.stats.remote()

    @staticmethod
    def _outcome(entry: BatchEntry, kind: str, value: Any) -> VideoOutcome:
        if kind == "result":
            assert isinstance(value, RunResult)
            return outcome_of(entry, value)
        if kind == "interrupted":
            return VideoOutcome(
                entry, "interrupted", EXIT_INTERRUPTED, value, RunInterrupted(value)
            )
        code, category, message, hint, _ = value
        return VideoOutcome(entry, "failed", code, error=_RemoteError(category, message, hint))

    def shutdown(self) -> None:
        if self._ray.is_initialized() and not self._address:
            self._ray.shutdown()
