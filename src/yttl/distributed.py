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
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
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
    isolated,
    not_started,
    outcome_of,
    settle_halted,
    unexpected,
)
from yttl.breaker import Outcome
from yttl.cache import CachedChunks
from yttl.config import Settings
from yttl.errors import (
    FATAL_ERRORS,
    CircuitOpenError,
    InputError,
    MissingDependencyError,
    ProviderError,
    RunInterrupted,
    StopRequested,
    UsageError,
    YttlError,
)
from yttl.models import RunResult, TranscriptSegment
from yttl.scheduler import LaneSpec, LocalAdmission
from yttl.sources.playlists import BatchEntry
from yttl.transcribe.base import ChunkStore, TranscriptionStats

__all__ = ["BudgetActor", "RayExecutor", "budget_actor", "remote_error", "secrets_for"]

logger = logging.getLogger(__name__)
STOP_POLL_SECONDS = 0.5


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "--executor ray needs Ray", hint="pip install -e '.[ray]' in yttl's checkout"
        ) from exc
    return ray


CONTROL = "control"
"""The actor's concurrency group for ``leave``, ``abandon`` and ``stop``: never queued
behind ``enter`` calls that wait for a slot (which only a ``leave`` frees)."""


class BudgetActor:
    """Every provider's admission for the whole cluster (an async Ray actor).

    ``enter`` runs in the actor's default group and may wait there for a slot; ``leave``,
    ``abandon`` and ``stop`` come in a group of their own (``CONTROL``), so that callers
    waiting in ``enter`` can never keep out the call that frees a slot. Ray gives each
    group its own event loop, so those calls hand their work to the loop the lanes live
    on (asyncio's primitives belong to one loop). Each ``enter`` has a ticket: a worker
    whose caller is cancelled while it waits ``abandon``s it, and the slot (or the
    half-open probe) it was given, or is given later, goes back at once."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._lanes: dict[str, LocalAdmission] = {}
        self._held: dict[str, tuple[str, bool]] = {}  # ticket -> (lane, probe)
        self._abandoned: set[str] = set()
        self._home: asyncio.AbstractEventLoop | None = None  # where the lanes live
        self.requests = 0  # actor calls, for the traffic it costs

    async def _at_home(self, work: Callable[[], Awaitable[None]]) -> None:
        here = asyncio.get_running_loop()
        if self._home is None or self._home is here:
            await work()
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_run(work), self._home))

    async def enter(
        self,
        key: str,
        spec: LaneSpec,
        label: str,
        tokens: int,
        ticket: str = "",
        call: str | None = None,
    ) -> tuple[str, Any]:
        self._home = self._home or asyncio.get_running_loop()
        self.requests += 1
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = LocalAdmission(spec, self._stop)
        try:
            probe = await lane.enter(label, tokens, call)
        except StopRequested as exc:
            return "stopped", exc.message
        except CircuitOpenError as exc:
            return "circuit_open", exc.message
        except ProviderError as exc:  # the breaker's verdict (unreachable)
            return "error", (type(exc).__name__, exc.message, exc.hint)
        if ticket in self._abandoned:  # its caller is gone: give it back now
            self._abandoned.discard(ticket)
            await lane.leave("neutral", probe, False)
            return "stopped", f"{label}: abandoned"
        if ticket:
            self._held[ticket] = (key, probe)
        return "ok", probe

    async def leave(
        self,
        key: str,
        outcome: Outcome,
        probe: bool,
        rate_limited: bool,
        ticket: str = "",
        status: int | None = None,
        call: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        """Whether the endpoint is now taken as down, as ``LocalAdmission.leave``."""
        self.requests += 1
        down = False

        async def work() -> None:
            nonlocal down
            self._held.pop(ticket, None)
            down = await self._lanes[key].leave(
                outcome, probe, rate_limited, status, call, retry_after
            )

        await self._at_home(work)
        return down

    async def abandon(self, ticket: str) -> None:
        """The caller of ``ticket`` was cancelled: free what it holds or will be given."""

        async def work() -> None:
            held = self._held.pop(ticket, None)
            if held is None:
                self._abandoned.add(ticket)
                return
            key, probe = held
            await self._lanes[key].leave("neutral", probe, False)

        await self._at_home(work)

    async def stop(self) -> None:
        async def work() -> None:
            self._stop.set()

        await self._at_home(work)

    def stopped(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> dict[str, Any]:
        lanes = {
            key: {
                "sent": lane.sent,
                "max_in_flight": lane.max_in_flight,
                "in_flight": lane.in_flight,
                "breaker_trips": lane.breaker.trips if lane.breaker else 0,
            }
            for key, lane in self._lanes.items()
        }
        return {"requests": self.requests, "lanes": lanes, "held": len(self._held)}


async def _run(work: Callable[[], Awaitable[None]]) -> None:
    await work()


def budget_actor(ray: Any, max_concurrency: int | None = None) -> Any:
    """A ``BudgetActor``, its control calls in a group of their own."""
    options: dict[str, Any] = {"num_cpus": 0, "concurrency_groups": {CONTROL: 4}}
    if max_concurrency is not None:
        options["max_concurrency"] = max_concurrency
    return ray.remote(**options)(BudgetActor).remote()


def _control(method: Any) -> Any:
    return method.options(concurrency_group=CONTROL)


class RemoteAdmission:
    """A worker's view of one lane of the ``BudgetActor``."""

    def __init__(self, actor: Any, key: str, spec: LaneSpec) -> None:
        self._actor, self._key, self._spec = actor, key, spec
        self._ticket = ""

    async def enter(self, label: str, tokens: int, call: str | None = None) -> bool:
        ticket = uuid.uuid4().hex
        try:
            status, value = await self._actor.enter.remote(
                self._key, self._spec, label, tokens, ticket, call
            )
        except BaseException:  # cancelled (Ctrl-C, a timeout) while it waited
            await asyncio.shield(_control(self._actor.abandon).remote(ticket))
            raise
        if status == "stopped":
            raise StopRequested(str(value))
        if status == "circuit_open":
            raise CircuitOpenError(str(value))
        if status == "error":
            raise remote_error(*value)
        self._ticket = ticket
        return bool(value)

    async def leave(
        self,
        outcome: Outcome,
        probe: bool,
        rate_limited: bool,
        status: int | None = None,
        call: str | None = None,
        retry_after: float | None = None,
    ) -> bool:
        ticket, self._ticket = self._ticket, ""
        down = await _control(self._actor.leave).remote(
            self._key, outcome, probe, rate_limited, ticket, status, call, retry_after
        )
        return bool(down)


def remote_error(name: str, message: str, hint: str | None) -> YttlError:
    """An error a worker or the actor reported by its class's name, as that class when it
    is one of ``yttl.errors`` (so it maps to the same exit code), else kept generic."""
    import yttl.errors

    kind = getattr(yttl.errors, name, None)
    if isinstance(kind, type) and issubclass(kind, ProviderError | InputError | UsageError):
        return kind(message, hint=hint)
    return _RemoteError("processing", message, hint)


class WhisperActor:
    """One Whisper model for the cluster (a Ray actor, with GPUs if asked for)."""

    def __init__(self, settings: Settings) -> None:
        from yttl.factory import build_transcriber
        from yttl.transcribe.local import WhisperModelHolder

        self._settings = settings
        self._holder = WhisperModelHolder()
        self._build = build_transcriber

    def transcribe(
        self, audio: bytes, suffix: str, transcript: str | None = None
    ) -> Iterator[tuple[str, Any]]:
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


def _run_video(entry: BatchEntry, settings: Settings, budget: Any, whisper: Any) -> tuple[str, Any]:
    """The body of a video's Ray task: ``("result", RunResult)``, ``("interrupted",
    RunResult | None)`` or ``("error", (exit code, category, message, hint))``."""
    from yttl.factory import build_components
    from yttl.perf import PerformanceTracker
    from yttl.pipeline import process_video

    async def main() -> tuple[str, Any]:
        stop = asyncio.Event()

        async def watch() -> None:  # Ctrl-C at the driver reaches every worker
            while not stop.is_set():
                if await _control(budget.stopped).remote():
                    stop.set()
                await asyncio.sleep(STOP_POLL_SECONDS)

        watcher = asyncio.create_task(watch())
        try:
            components = build_components(settings, stop=stop)
            components.admissions = lambda key, spec, _: RemoteAdmission(budget, key, spec)
            components.transcribers = lambda: RemoteTranscriber(whisper, settings)
            try:
                result = await process_video(
                    entry.source, settings, components=components, tracker=PerformanceTracker()
                )
            finally:
                await components.aclose()
            return "result", result
        except RunInterrupted as exc:
            return "interrupted", exc.partial
        except YttlError as exc:
            return "error", (
                exit_code_for(exc),
                exc.category,
                exc.message,
                exc.hint,
                type(exc).__name__,
            )
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


def secrets_for(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The keys a worker needs, and no others (``YTTL_`` settings travel as ``Settings``):
    the providers' of this run (chat, fallback, transcription), its profiles', and the
    hub's token when the local model may have to be fetched."""
    from yttl.endpoints import endpoint_for

    names: set[str] = set()
    providers = {settings.llm_provider, settings.fallback_provider, settings.whisper_provider}
    for name in providers - {None, "local"}:
        assert name is not None
        with contextlib.suppress(YttlError):  # an unknown one fails later, where it is used
            names.add(endpoint_for(settings, name, environ).api_key_env)
    names.update(p.key_env for p in settings.profiles.values())
    if "local" in (settings.llm_provider, settings.fallback_provider):
        names.add("HF_TOKEN")
    return {name: environ[name] for name in sorted(names) if environ.get(name)}


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
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "runtime_env": env,
        }
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
        budget = budget_actor(ray)
        gpus = self._settings.ray_whisper_gpus
        whisper = ray.remote(num_cpus=0 if gpus else 1, num_gpus=gpus)(WhisperActor).remote(
            self._settings
        )
        task = ray.remote(num_cpus=0.5, max_retries=0)(_run_video)
        slots = asyncio.Semaphore(max(1, max_concurrent_videos))
        pending: list[Any] = []

        halted: list[ProviderError] = []

        async def relay_stop() -> None:
            await stop.wait()
            await _control(budget.stop).remote()

        async def run(entry: BatchEntry) -> VideoOutcome:
            early = not_started(entry, False)  # a source that failed: no slot needed
            if early is not None:
                return early
            async with slots:
                early = not_started(entry, stop.is_set(), halted[0] if halted else None)
                if early is not None:
                    return early
                line = observer.video(entry)
                line.phase("running on Ray")
                ref = task.remote(entry, self._settings, budget, whisper)
                pending.append(ref)
                try:
                    kind, value = await ref
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    return unexpected(entry, exc, "its Ray task failed")
            outcome = self._outcome(entry, kind, value)
            if isinstance(outcome.error, FATAL_ERRORS) and not stop.is_set():
                halted.append(outcome.error)  # no call of any video can succeed
                stop.set()
            return outcome

        async def one(entry: BatchEntry) -> VideoOutcome:
            return await isolated(entry, run, write, observer)

        relay = asyncio.create_task(relay_stop())
        tasks = [asyncio.create_task(one(entry)) for entry in entries]
        try:
            outcomes = list(await asyncio.gather(*tasks))
        except asyncio.CancelledError:  # a second Ctrl-C: end the tasks now
            for ref in pending:
                ray.cancel(ref, force=True)
            for each in tasks:
                each.cancel()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
            outcomes = ended_or_interrupted(entries, ended, halted[0] if halted else None)
        finally:
            relay.cancel()
            with contextlib.suppress(Exception):
                self.budget_stats = await _control(budget.stats).remote()
        settle_halted(outcomes, halted[0] if halted else None)
        return outcomes

    @staticmethod
    def _outcome(entry: BatchEntry, kind: str, value: Any) -> VideoOutcome:
        if kind == "result":
            assert isinstance(value, RunResult)
            return outcome_of(entry, value)
        if kind == "interrupted":
            return VideoOutcome(
                entry, "interrupted", EXIT_INTERRUPTED, value, RunInterrupted(value)
            )
        code, category, message, hint, name = value
        error = remote_error(name, message, hint)
        if isinstance(error, _RemoteError):
            error.category = category
        return VideoOutcome(entry, "failed", code, error=error)

    def shutdown(self) -> None:
        if self._ray.is_initialized() and not self._address:
            self._ray.shutdown()
