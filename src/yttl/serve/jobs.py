"""The server's jobs: sources run through the shared job layer (``yttl.jobs``), all on
one set of providers, one Whisper model and one cache, under the providers' one budget
(slots, pacing, breaker). Kept in the library's file, so that a restart lists the
finished jobs and takes up the unfinished ones; each job's progress is a stream of
events (``progress``, ``video``, ``done``) for the pages and the extension."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from yttl.batch import VideoOutcome
from yttl.config import Settings
from yttl.embed.indexing import EmbedderHolder
from yttl.errors import UsageError, YttlError
from yttl.factory import RunComponents, build_components
from yttl.jobs import local_sources_exist, run_sources
from yttl.library.jobs import JobRecord, JobStore
from yttl.messages import error_line
from yttl.sources.playlists import BatchEntry

__all__ = ["CLIENT_OPTIONS", "JobManager", "job_settings"]

logger = logging.getLogger(__name__)

CLIENT_OPTIONS = ("summary_language", "sections", "profile", "transcript_only", "slides")
"""What a web client may set: never a folder to write to, never a key or a URL."""

Event = tuple[str, dict[str, Any]]


def job_settings(settings: Settings, options: dict[str, Any]) -> Settings:
    """The server's settings with a client's options; anything else is refused."""
    unknown = sorted(set(options) - set(CLIENT_OPTIONS))
    if unknown:
        raise UsageError(
            f"unknown job option {unknown[0]!r}; a job may set {', '.join(CLIENT_OPTIONS)}"
        )
    changes: dict[str, Any] = {"open": False, "quiet": True}
    language = options.get("summary_language")
    if language is not None:
        if not isinstance(language, str) or not 0 < len(language) <= 40:
            raise UsageError("summary_language must be a language name or code")
        changes["summary_language"] = language
    if options.get("sections") is not None:
        if options["sections"] not in ("fixed", "chapters"):
            raise UsageError("sections must be fixed or chapters")
        changes["sections"] = options["sections"]
    profile = options.get("profile")
    if profile is not None:
        known = ("local", "openai", "groq", "chatgpt", "huggingchat", *settings.profiles)
        if profile not in known:
            raise UsageError(f"unknown profile {profile!r}; this server knows {', '.join(known)}")
        changes["llm_provider"] = profile
    if options.get("transcript_only") is not None:
        changes["transcript_only"] = bool(options["transcript_only"])
    if options.get("slides") is not None:
        if not isinstance(options["slides"], bool):
            raise UsageError("slides must be true or false")
        changes["slides"] = options["slides"]
    return dataclasses.replace(settings, **changes).validate()


class _JobObserver:
    """A job's batch observer: each video's progress and end go into the job and out as
    events."""

    def __init__(self, manager: JobManager, job: JobRecord) -> None:
        self._manager = manager
        self._job = job
        self._index: dict[int, int] = {}

    def video(self, entry: BatchEntry) -> _VideoProgress:
        state = {
            "video_id": None,
            "title": entry.label,
            "status": "running",
            "phase": "waiting",
            "sections_done": 0,
            "sections_total": 0,
            "page": None,
            "source": entry.source if isinstance(entry.source, str) else entry.label,
        }
        self._job.videos.append(state)
        self._index[id(entry)] = len(self._job.videos) - 1
        return _VideoProgress(self, state)

    def finished(self, outcome: VideoOutcome) -> None:
        position = self._index.get(id(outcome.entry))
        state = self._job.videos[position] if position is not None else {}
        if position is None:  # never started: a bad source, or the job was stopped
            self._job.videos.append(state)
        done, total = outcome.sections
        result = outcome.result
        state.update(
            video_id=result.video.id if result else None,
            title=result.video.title if result else outcome.entry.label,
            status=outcome.status,
            phase="done",
            sections_done=done,
            sections_total=total,
            page=f"/v/{result.video.id}" if result and outcome.status != "failed" else None,
            error=error_line(outcome.error) if outcome.error else None,
        )
        self._manager.emit(self._job, "video", dict(state))

    def changed(self, state: dict[str, Any]) -> None:
        self._manager.emit(self._job, "progress", dict(state))


class _VideoProgress:
    """One video's ``RunObserver``: its phase and calls done, as progress events."""

    def __init__(self, job: _JobObserver, state: dict[str, Any]) -> None:
        self._job, self._state = job, state

    def phase(self, name: str) -> None:
        self._state["phase"] = name
        self._job.changed(self._state)

    def progress(self, kind: str, amount: int) -> None:
        if kind == "total":
            self._state["sections_total"] += amount
        elif kind == "done":
            self._state["sections_done"] += amount
        else:
            return
        self._job.changed(self._state)


class JobManager:
    """Jobs of one server. ``start`` takes up what a previous run left unfinished."""

    def __init__(
        self, settings: Settings, store: JobStore, embeddings: EmbedderHolder | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self._embeddings = embeddings  # one embedder for the server's jobs and queries
        self._slots = asyncio.Semaphore(settings.serve_max_jobs)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners: dict[str, list[asyncio.Queue[Event]]] = {}
        self._components: dict[tuple[str, bool], RunComponents] = {}
        self._building = asyncio.Lock()
        self._cancelled: set[str] = set()
        self._live: dict[str, JobRecord] = {}  # queued or running, as they are now

    async def start(self) -> int:
        """Resume the jobs a previous run of the server left queued or running."""
        jobs = await asyncio.to_thread(self.store.unfinished)
        for job in jobs:
            job.status, job.videos = "queued", []
            self._launch(job)
        return len(jobs)

    async def submit(self, sources: list[str], options: dict[str, Any]) -> JobRecord:
        if not sources or not all(isinstance(s, str) and s.strip() for s in sources):
            raise UsageError("sources must be a list of URLs or paths")
        job_settings(self.settings, options)  # refuse bad options now, not in the job
        job = JobRecord([s.strip() for s in sources], dict(options))
        await asyncio.to_thread(self.store.save, job)
        self._launch(job)
        return job

    async def retry(self, job_id: str) -> JobRecord | None:
        job = await asyncio.to_thread(self.store.get, job_id)
        if job is None:
            return None
        if job_id in self._tasks:
            return job  # still running
        job.status, job.videos, job.error = "queued", [], None
        await asyncio.to_thread(self.store.save, job)
        self._launch(job)
        return job

    async def cancel(self, job_id: str) -> JobRecord | None:
        task = self._tasks.get(job_id)
        if task is not None:
            self._cancelled.add(job_id)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return await asyncio.to_thread(self.store.get, job_id)

    def live(self, job_id: str) -> JobRecord | None:
        """The running job's state as it is now (the stored one lags a little)."""
        return self._live.get(job_id)

    def _launch(self, job: JobRecord) -> None:
        self._live[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=f"yttl-job-{job.id}")

    async def _components_for(self, settings: Settings) -> RunComponents:
        key = (settings.llm_provider, settings.transcript_only)
        async with self._building:
            if key not in self._components:
                built = await asyncio.to_thread(build_components, settings)
                built.embeddings = self._embeddings or built.embeddings
                shared = next(iter(self._components.values()), None)
                if shared is not None:
                    built.whisper = shared.whisper  # one Whisper model for every job
                self._components[key] = built
        return self._components[key]

    async def _run(self, job: JobRecord) -> None:
        try:
            async with self._slots:
                await self._execute(job)
        finally:
            self._tasks.pop(job.id, None)
            self._live.pop(job.id, None)

    async def _execute(self, job: JobRecord) -> None:
        job.status = "running"
        await asyncio.to_thread(self.store.save, job)
        self.emit(job, "progress", {"status": "running"})
        observer = _JobObserver(self, job)
        stop = asyncio.Event()
        try:
            settings = job_settings(self.settings, job.options)
            local_sources_exist(job.sources)  # before any model is loaded or fetched
            components = (await self._components_for(settings)).for_run(stop, settings)
            run = await run_sources(
                job.sources,
                settings,
                stop=stop,
                components=components,
                observe=lambda _: contextlib.nullcontext(observer),
            )
            job.status = _overall([o.status for o in run.outcomes])
            if job.id in self._cancelled:  # the batch wrote what it finished, then ended
                self._mark_cancelled(job)
        except asyncio.CancelledError:
            if job.id not in self._cancelled:  # the server is stopping: resume it next time
                raise
            self._mark_cancelled(job)
        except YttlError as exc:
            job.status, job.error = "failed", error_line(exc)
        except Exception as exc:
            logger.exception("job %s failed", job.id)
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        await asyncio.to_thread(self.store.save, job)
        self.emit(job, "done", job.as_dict())

    def _mark_cancelled(self, job: JobRecord) -> None:
        self._cancelled.discard(job.id)
        job.status, job.error = "cancelled", "cancelled"
        for state in job.videos:
            if state.get("status") in ("running", "interrupted"):
                state["status"] = "cancelled"

    def emit(self, job: JobRecord, kind: str, data: dict[str, Any]) -> None:
        for queue in self._listeners.get(job.id, []):
            queue.put_nowait((kind, data))

    async def events(self, job_id: str) -> AsyncIterator[Event]:
        """The job's state now, then its events until it is done."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners.setdefault(job_id, []).append(queue)
        try:
            job = self._live.get(job_id) or await asyncio.to_thread(self.store.get, job_id)
            if job is None:
                return
            yield "progress", job.as_dict()
            if job.finished and job_id not in self._tasks:
                yield "done", job.as_dict()
                return
            while True:
                kind, data = await queue.get()
                yield kind, data
                if kind == "done":
                    return
        finally:
            self._listeners[job_id].remove(queue)

    async def close(self) -> None:
        """Stop every running job (it stays unfinished in the store, and resumes when the
        server starts again), then close the providers."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for components in self._components.values():
            if components.embeddings is self._embeddings:
                components.embeddings = None  # the server closes its own
            await components.aclose()


def _overall(statuses: list[str]) -> Any:
    """A job's status from its videos': the worst of them."""
    for status in ("interrupted", "failed", "partial"):
        if status in statuses:
            return status
    return "ok"
