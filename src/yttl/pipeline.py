"""``process_video``: source -> transcript -> sections -> summaries, as a library call.

With captions the whole transcript is there at once; with whisper its segments stream
in, and each section is summarized as soon as the transcript has passed its end.
Interrupted runs raise ``RunInterrupted`` carrying everything finished so far.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from yttl.cache import ResultsCache
from yttl.config import Settings
from yttl.errors import InputError, YttlError
from yttl.factory import (
    build_cache,
    build_call_policy,
    build_llm,
    build_transcriber,
    max_concurrent_llm,
)
from yttl.llm.base import LLMProvider
from yttl.models import HourSummary, RunResult, VideoInfo
from yttl.perf import MemorySampler, PerformanceTracker
from yttl.resilience import RetryManager
from yttl.sources import resolve_source
from yttl.sources.local import probe_media
from yttl.summarize import prompts
from yttl.summarize.calls import Route
from yttl.summarize.engine import EngineOptions, SummaryEngine
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
    ytdlp_settings,
)

__all__ = ["NullObserver", "RunInterrupted", "RunObserver", "plan_for", "process_video"]

logger = logging.getLogger(__name__)


class NullObserver:
    def phase(self, name: str) -> None:
        pass

    def progress(self, kind: str, amount: int) -> None:
        pass


class RunInterrupted(YttlError):
    """Ctrl-C (or cancellation) mid-run; ``partial`` holds what was finished, if anything."""

    def __init__(self, partial: RunResult | None) -> None:
        super().__init__("interrupted")
        self.partial = partial


def plan_for(video: VideoInfo, settings: Settings) -> SectionPlan:
    if settings.sections == "chapters":
        if video.chapters:
            return plan_chapters(video.duration, video.chapters)
        logger.warning("the video has no chapters; using 5-minute sections")
    return plan_fixed(video.duration)


class _Run:
    """One video's run: the pieces it is wired from, and what it has produced so far."""

    def __init__(self, settings: Settings, observer: RunObserver, tracker: PerformanceTracker,
                 cache: ResultsCache, environ: Mapping[str, str] | None,
                 stop: asyncio.Event) -> None:  # fmt: skip
        self.stop = stop
        self.settings = settings
        self.observer = observer
        self.tracker = tracker
        self.cache = cache
        self.environ = environ
        self.video: VideoInfo | None = None
        self.stream: TranscriptStream | None = None
        self.engine: SummaryEngine | None = None
        self.plan: SectionPlan | None = None
        self.providers: list[LLMProvider] = []
        self.policies: list[RetryManager] = []
        self.memory = MemorySampler()

    async def transcript(self, source: str, transcriber: Transcriber | None,
                         workdir: Path) -> TranscriptStream:  # fmt: skip
        settings, tracker = self.settings, self.tracker
        self.observer.phase("resolve")
        with tracker.phase("resolve"):
            self.video = resolve_source(source, ytdlp_settings(settings))
        self.observer.phase("captions")
        stream = await caption_stream(self.video, settings, tracker)
        if stream is None:
            transcriber = transcriber or build_transcriber(settings, self.environ)
            stream = await whisper_stream(self.video, settings, transcriber, workdir,
                                          self.observer, tracker, self.cache)  # fmt: skip
            if self.video.duration <= 0 and stream.audio is not None:
                duration, _ = await asyncio.to_thread(probe_media, stream.audio)
                self.video = replace(self.video, duration=duration)
            self.observer.phase("transcribe")
            self.observer.progress("audio_total", int(self.video.duration))
        self.stream = stream
        return stream

    async def summarize(self, stream: TranscriptStream, provider: LLMProvider,
                        fallback: LLMProvider | None) -> list[HourSummary]:  # fmt: skip
        assert self.video is not None
        settings, tracker = self.settings, self.tracker
        segments = collect(stream, sponsor_filter(self.video, settings, stream.segments),
                           self.observer, tracker, self.stop)  # fmt: skip
        if self.video.duration <= 0:  # captions of a video whose length nobody reported
            async for _ in segments:
                pass
            end = max((s.end for s in stream.collected), default=0.0)
            if end <= 0:
                raise InputError(f"{self.video.id} has no duration and an empty transcript")
            self.video = replace(self.video, duration=end)
            segments = iterate(list(stream.collected))  # again, now that the plan is known
        self.plan = plan_for(self.video, settings)
        options = EngineOptions(tracker.max_concurrent_llm, settings.sequential,
                                settings.max_output_tokens)  # fmt: skip
        self.policies = [build_call_policy(settings, p, tracker, self.environ)
                         for p in (provider, fallback) if p is not None]  # fmt: skip
        second = Route(fallback, self.policies[1]) if fallback is not None else None
        self.engine = SummaryEngine(
            provider, options, tracker=tracker, on_progress=self.observer.progress,
            policy=self.policies[0], fallback=second, cache=self.cache, stop=self.stop,
        )  # fmt: skip
        if stream.transcriber is None:
            self.observer.phase("summarize")
        with tracker.phase("summarize"):
            return await self.engine.run(self.plan, stream_sections(segments, self.plan))

    def result(self, hours: list[HourSummary], provider: LLMProvider | None) -> RunResult:
        assert self.video is not None and self.stream is not None
        tracker, stream = self.tracker, self.stream
        if stream.transcriber is not None:
            stats = stream.transcriber.stats
            tracker.count("audio_seconds", stats.audio_seconds)
            tracker.count("speech_seconds", stats.speech_seconds)
            tracker.count("silence_skipped_seconds", stats.silence_skipped_seconds)
            tracker.count("chunks", stats.chunks)
            tracker.transcription = {"provider": stats.provider, "model": stats.model,
                                     **stats.options}  # fmt: skip
        tracker.counters["breaker_trips"] = sum(
            p.breaker.trips for p in self.policies if p.breaker is not None
        )
        self.memory.sample()
        tracker.memory_peak_bytes = max(tracker.memory_peak_bytes, self.memory.peak_bytes)
        return RunResult(
            self.video,
            stream.transcript(),
            tuple(hours),
            tuple(self.engine.failures) if self.engine else (),
            stats=tracker.stats(),
            provider=provider.name if provider else None,
            model=provider.model if provider else None,
            prompt_version=prompts.PROMPT_VERSION if provider else None,
        )

    def partial(self) -> RunResult | None:
        """What an interrupted run finished: sections done so far, the rest marked."""
        if self.video is None or self.stream is None:
            return None
        hours = self.engine.snapshot(self.plan) if self.engine and self.plan else []
        return self.result(hours, self.providers[0] if self.providers else None)


async def process_video(
    source: str,
    settings: Settings,
    *,
    observer: RunObserver | None = None,
    tracker: PerformanceTracker | None = None,
    provider: LLMProvider | None = None,
    transcriber: Transcriber | None = None,
    environ: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Summarize one video. Raises ``yttl.errors.YttlError`` subclasses on bad input.

    Setting ``stop`` (the CLI does on the first Ctrl-C) stops it gracefully: calls in
    flight finish and are cached, nothing new starts, the rest is marked interrupted."""
    concurrency = max_concurrent_llm(settings, environ)
    tracker = tracker or PerformanceTracker()
    tracker.max_concurrent_llm = concurrency
    run = _Run(settings, observer or NullObserver(), tracker, build_cache(settings), environ,
               stop or asyncio.Event())  # fmt: skip
    fallback: LLMProvider | None = None
    try:
        # Providers first: a missing key must fail before any download.
        if not settings.transcript_only:
            provider = provider or build_llm(settings, environ)
            run.providers.append(provider)
            if settings.fallback_provider:
                fallback = build_llm(settings, environ, name=settings.fallback_provider)
                run.providers.append(fallback)
        with run.memory, tempfile.TemporaryDirectory(prefix="yttl-") as work:
            stream = await run.transcript(source, transcriber, Path(work))
            if settings.transcript_only or provider is None:
                filtered = sponsor_filter(run.video, settings, stream.segments)  # type: ignore[arg-type]
                async for _ in collect(stream, filtered, run.observer, tracker, run.stop):
                    pass
                return run.result([], None)
            hours = await run.summarize(stream, provider, fallback)
            return run.result(hours, provider)
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        raise RunInterrupted(run.partial()) from exc
    finally:
        for each in run.providers:
            await each.aclose()
        run.cache.close()
