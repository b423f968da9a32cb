"""``process_video``: source -> transcript -> sections -> summaries, as a library call.

With captions the whole transcript is there at once; with whisper its segments stream
in, and each section is summarized as soon as the transcript has passed its end.
Interrupted runs raise ``RunInterrupted`` carrying everything finished so far.
In a batch, every video is given the same ``RunComponents`` (one scheduler, one Whisper
model) and a ``video_slot`` held while it is resolved, downloaded and transcribed.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path

from yttl.aio import blocking
from yttl.config import Settings
from yttl.errors import InputError, ProviderError, RunInterrupted, YttlError
from yttl.factory import RunComponents, build_components
from yttl.llm.base import LLMProvider
from yttl.models import (
    Failure,
    HourSummary,
    InfoEntry,
    RunResult,
    Slide,
    TranscriptSegment,
    VideoInfo,
)
from yttl.perf import MemorySampler, PerformanceTracker
from yttl.slides import SlideStage
from yttl.sources import resolve_source
from yttl.sources.local import probe_media
from yttl.sources.ytdlp import info_from_dict
from yttl.summarize import prompts
from yttl.summarize.calls import Route
from yttl.summarize.engine import SummaryEngine
from yttl.summarize.sections import SectionPlan, plan_chapters, plan_fixed, stream_sections
from yttl.transcribe.base import Transcriber
from yttl.transcript import (
    RunObserver,
    TranscriptStream,
    caption_stream,
    collect,
    iterate,
    sponsor_filter,
    whisper_stream,
)

__all__ = [
    "NullObserver",
    "RunInterrupted",
    "RunObserver",
    "VideoSource",
    "plan_for",
    "process_video",
    "resolve_video",
]

VideoSource = str | InfoEntry
"""A URL, a path (media or info.json), or an info dict (a playlist's entry, a URL read)."""

logger = logging.getLogger(__name__)


class NullObserver:
    def phase(self, name: str) -> None:
        pass

    def progress(self, kind: str, amount: int) -> None:
        pass


def plan_for(video: VideoInfo, sections: str) -> SectionPlan:
    if sections == "chapters":
        if video.chapters:
            return plan_chapters(video.duration, video.chapters)
        logger.warning("the video has no chapters; using 5-minute sections")
    return plan_fixed(video.duration)


def resolve_video(source: VideoSource, ytdlp: Mapping[str, object]) -> VideoInfo:
    """Blocking (yt-dlp, disk): callers run it in a thread so Ctrl-C stays responsive."""
    if isinstance(source, InfoEntry):
        info = source.info
        if info.get("_type") in ("url", "url_transparent") and info.get("url"):  # flat entry
            video = resolve_source(str(info["url"]), ytdlp)
            if info.get("_type") == "url_transparent" and info.get("title"):
                video = replace(video, title=str(info["title"]))  # the playlist knows better
            return video
        return info_from_dict(info, source=source.kind, origin=f"entry {info.get('id')!r}")
    return resolve_source(source, ytdlp)


class _Run:
    """One video's run: the pieces it is wired from, and what it has produced so far."""

    def __init__(
        self, components: RunComponents, observer: RunObserver, tracker: PerformanceTracker
    ) -> None:
        self.components = components
        self.stop = components.scheduler.stop
        self.options = components.transcript
        self.observer = observer
        self.tracker = tracker
        self.cache = components.cache
        self.video: VideoInfo | None = None
        self.stream: TranscriptStream | None = None
        self.engine: SummaryEngine | None = None
        self.plan: SectionPlan | None = None
        self.memory = MemorySampler()
        self.slides: SlideStage | None = None
        self.slides_task: asyncio.Task[tuple[Slide, ...]] | None = None

    async def transcript(
        self, source: VideoSource, transcriber: Transcriber | None, workdir: Path
    ) -> TranscriptStream:
        options, tracker = self.options, self.tracker
        self.observer.phase("resolve")
        with tracker.phase("resolve"):
            self.video = await blocking(
                resolve_video, source, self.components.ytdlp, stop=self.stop, name="yttl-resolve"
            )
        if self.components.slides is not None:  # beside the transcript, in its own thread
            self.slides = SlideStage(self.components.slides, self.cache)
            self.slides_task = asyncio.create_task(
                self.slides.run(self.video, self.components.ytdlp, workdir, self.stop)
            )
        self.observer.phase("captions")
        stream = await caption_stream(self.video, options, tracker)
        if stream is None:
            transcriber = transcriber or self.components.transcriber()
            stream = await whisper_stream(
                self.video,
                options,
                transcriber,
                workdir,
                self.observer,
                tracker,
                self.cache,
                self.stop,
            )
            if self.video.duration <= 0 and stream.audio is not None:
                duration, _ = await asyncio.to_thread(probe_media, stream.audio)
                self.video = replace(self.video, duration=duration)
            self.observer.phase("transcribe")
            self.observer.progress("audio_total", int(self.video.duration))
        self.stream = stream
        return stream

    async def summarize(
        self,
        stream: TranscriptStream,
        provider: LLMProvider,
        fallback: LLMProvider | None,
        transcribed: Callable[[], None],
    ) -> list[HourSummary]:
        assert self.video is not None
        tracker = self.tracker
        segments = _then(
            collect(
                stream,
                sponsor_filter(self.video, self.options, stream.segments),
                self.observer,
                tracker,
                self.stop,
            ),
            transcribed,
        )
        if self.video.duration <= 0:  # captions of a video whose length nobody reported
            async for _ in segments:
                pass
            end = max((s.end for s in stream.collected), default=0.0)
            if end <= 0:
                raise InputError(f"{self.video.id} has no duration and an empty transcript")
            self.video = replace(self.video, duration=end)
            segments = iterate(list(stream.collected))  # again, now that the plan is known
        self.plan = plan_for(self.video, self.components.sections)
        options = self.components.engine
        second = Route(fallback, self.components.lane(fallback)) if fallback is not None else None
        video = self.video
        context = prompts.PromptContext(
            video.title, video.channel, video.description, self.components.summary_language
        )
        self.engine = SummaryEngine(
            provider,
            options,
            tracker=tracker,
            on_progress=self.observer.progress,
            policy=self.components.lane(provider),
            fallback=second,
            cache=self.cache,
            stop=self.stop,
            prompt_context=context,
            chapters=video.chapters,
            slides=self.slides,
        )
        if stream.transcriber is None:
            self.observer.phase("summarize")
        with tracker.phase("summarize"):
            return await self.engine.run(
                self.plan, stream_sections(segments, self.plan, stream.cut)
            )

    def result(self, hours: list[HourSummary], provider: LLMProvider | None) -> RunResult:
        assert self.video is not None and self.stream is not None
        tracker, stream = self.tracker, self.stream
        if stream.transcriber is not None:
            stats = stream.transcriber.stats
            tracker.count("audio_seconds", stats.audio_seconds)
            tracker.count("speech_seconds", stats.speech_seconds)
            tracker.count("silence_skipped_seconds", stats.silence_skipped_seconds)
            tracker.count("chunks", stats.chunks)
            tracker.transcription = {
                "provider": stats.provider,
                "model": stats.model,
                **stats.options,
                "resumed_chunks": stats.resumed_chunks,
                "fallback_windows": stats.fallback_windows,
                "dropped_segments": stats.dropped_segments,
            }
        tracker.counters["breaker_trips"] = self.components.scheduler.breaker_trips
        self.memory.sample()
        tracker.memory_peak_bytes = max(tracker.memory_peak_bytes, self.memory.peak_bytes)
        failures = tuple(self.engine.failures) if self.engine else ()
        slides = self.slides.found if self.slides is not None else None
        if self.slides is not None and self.slides.error is not None:
            error = self.slides.error
            failures = (*failures, Failure("slides", error.category, error.message))
        if stream.error is not None:
            failures = (
                Failure(
                    "transcription",
                    stream.error.category,
                    stream.error.message,
                    stream.error.attempts if isinstance(stream.error, ProviderError) else 1,
                ),
                *failures,
            )
        return RunResult(
            self.video,
            stream.transcript(),
            tuple(hours),
            failures,
            stats=tracker.stats(),
            provider=provider.name if provider else None,
            model=provider.model if provider else None,
            prompt_version=(prompts.SLIDES_PROMPT_VERSION if slides else prompts.PROMPT_VERSION)
            if provider
            else None,
            summary=self.engine.overview if self.engine else None,
            summary_language=self.components.summary_language if provider else None,
            slides=slides,
        )

    async def finish_slides(self) -> None:
        """The slides stage ends with the run: its result is part of the run's."""
        if self.slides_task is not None and self.slides is not None:
            await self.slides_task
            self.tracker.add_phase("slides", self.slides.seconds)

    def drop_slides(self) -> None:
        if self.slides_task is not None and not self.slides_task.done():
            self.slides_task.cancel()

    def partial(self) -> RunResult | None:
        """What an interrupted run finished: sections done so far, the rest marked."""
        if self.video is None or self.stream is None:
            return None
        hours = self.engine.snapshot(self.plan) if self.engine and self.plan else []
        return self.result(hours, self.components.llm)

    def failed(self, error: YttlError) -> RunResult | None:
        """What a run that ``error`` ended had made (its transcript, the sections done),
        every section not done marked failed for that reason: written, never lost."""
        if self.video is None or self.stream is None:
            return None
        hours = self.engine.snapshot(self.plan, error.message) if self.engine and self.plan else []
        result = self.result(hours, self.components.llm)
        if not result.transcript.segments:
            return None  # nothing was made: no empty file is written for it
        attempts = error.attempts if isinstance(error, ProviderError) else 1
        known = {f.where for f in result.failures}
        more = [
            Failure(f"section {s.section.label}", error.category, error.message, attempts)
            for h in hours
            for s in h.sections
            if s.status == "failed" and f"section {s.section.label}" not in known
        ] or [Failure("summaries", error.category, error.message, attempts)]
        return replace(result, failures=(*result.failures, *more))


async def _then(
    segments: AsyncIterator[TranscriptSegment], done: Callable[[], None]
) -> AsyncIterator[TranscriptSegment]:
    try:
        async for segment in segments:
            yield segment
    finally:
        done()


async def process_video(
    source: VideoSource,
    settings: Settings,
    *,
    components: RunComponents | None = None,
    observer: RunObserver | None = None,
    tracker: PerformanceTracker | None = None,
    provider: LLMProvider | None = None,
    transcriber: Transcriber | None = None,
    environ: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
    video_slot: asyncio.Semaphore | None = None,
) -> RunResult:
    """Summarize one video. Raises ``yttl.errors.YttlError`` subclasses on bad input.

    Setting ``stop`` (the CLI does on the first Ctrl-C) stops it gracefully: calls in
    flight finish and are cached, nothing new starts, the rest is marked interrupted.
    ``components`` (from ``yttl.factory.build_components``) are shared by the videos of a
    batch; without them the run builds its own and closes them at the end."""
    own = components is None
    if components is None:  # providers first: a missing key must fail before any download
        components = build_components(settings, environ, stop=stop, llm=provider)
    tracker = tracker or PerformanceTracker()
    tracker.max_concurrent_llm = components.concurrency
    run = _Run(components, observer or NullObserver(), tracker)
    held = False

    def release() -> None:  # the transcript is complete: let the next video start on its own
        nonlocal held
        if held and video_slot is not None:
            video_slot.release()
        held = False

    try:
        if video_slot is not None:
            await video_slot.acquire()
            held = True
        with run.memory, tempfile.TemporaryDirectory(prefix="yttl-") as work:
            stream = await run.transcript(source, transcriber, Path(work))
            llm = components.llm
            if components.transcript_only or llm is None:
                filtered = sponsor_filter(run.video, run.options, stream.segments)  # type: ignore[arg-type]
                async for _ in collect(stream, filtered, run.observer, tracker, run.stop):
                    pass
                release()
                await run.finish_slides()
                if run.stop.is_set():  # stopped before the end: not a complete transcript
                    raise RunInterrupted(run.result([], None))
                return run.result([], None)
            hours = await run.summarize(stream, llm, components.fallback, release)
            await run.finish_slides()
            return run.result(hours, llm)
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        raise RunInterrupted(run.partial()) from exc
    except YttlError as exc:  # the provider is gone, say: what is made goes out with it
        if not isinstance(exc, RunInterrupted) and exc.partial is None:
            exc.partial = run.failed(exc)
        raise
    finally:
        run.drop_slides()
        release()
        if own:
            await components.aclose()
