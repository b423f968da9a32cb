"""``process_video``: source -> transcript -> sections -> summaries, as a library call.

With captions the whole transcript is there at once; with whisper its segments stream
in, and each section is summarized as soon as the transcript has passed its end.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from yttl.config import Settings
from yttl.errors import InputError, NetworkError
from yttl.factory import build_llm, build_transcriber, max_concurrent_llm
from yttl.llm.base import LLMProvider
from yttl.models import RunResult, Transcript, TranscriptSegment, TranscriptSource, VideoInfo
from yttl.perf import MemorySampler, PerformanceTracker
from yttl.sources import choose_track, fetch_track_text, parse_captions, resolve_source
from yttl.sources.local import probe_media
from yttl.sources.sponsorblock import fetch_segments, remove_segments
from yttl.sources.ytdlp import ytdlp_params
from yttl.summarize import prompts
from yttl.summarize.engine import EngineOptions, SummaryEngine
from yttl.summarize.sections import SectionPlan, plan_chapters, plan_fixed, stream_sections
from yttl.transcribe.base import Transcriber

__all__ = ["NullObserver", "RunObserver", "plan_for", "process_video"]

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """What the CLI (or any caller) hears of a run's progress.

    ``progress`` kinds: ``total``/``done`` (LLM calls), ``download_total``/``download_done``
    (bytes), ``audio_total``/``audio_done`` (seconds transcribed).
    """

    def phase(self, name: str) -> None: ...

    def progress(self, kind: str, amount: int) -> None: ...


class NullObserver:
    def phase(self, name: str) -> None:
        pass

    def progress(self, kind: str, amount: int) -> None:
        pass


@dataclass
class _TranscriptStream:
    """Segments as they come, and a record of all of them for the outputs."""

    segments: AsyncIterator[TranscriptSegment]
    source: TranscriptSource
    language: str | None
    transcriber: Transcriber | None = None
    collected: list[TranscriptSegment] | None = None

    def transcript(self) -> Transcript:
        language = self.language
        if self.transcriber is not None:
            language = self.transcriber.stats.language or language
        return Transcript(tuple(self.collected or ()), self.source, language)


async def _iterate(items: Iterable[TranscriptSegment]) -> AsyncIterator[TranscriptSegment]:
    for item in items:
        yield item


async def _captions(video: VideoInfo, settings: Settings,
                    tracker: PerformanceTracker) -> _TranscriptStream | None:  # fmt: skip
    """The preferred caption track, or None when there is none or it cannot be had."""
    if settings.force_local_transcribe:
        return None
    track = choose_track(video, settings.language)
    if track is None:
        logger.info("no caption track in %r; transcribing the audio", settings.language)
        return None
    with tracker.phase("captions"):
        try:
            text = await fetch_track_text(track)
        except NetworkError as exc:
            logger.warning("%s; falling back to transcription", exc.message)
            return None
    segments = parse_captions(text, track.ext)
    return _TranscriptStream(_iterate(segments), "captions", track.language)


async def _audio_path(
    video: VideoInfo, settings: Settings, workdir: Path, observer: RunObserver,
    tracker: PerformanceTracker,
) -> Path:  # fmt: skip
    if video.media_path is not None:
        return Path(video.media_path)
    if video.source == "info_json" and not video.url.startswith(("http://", "https://")):
        raise InputError(f"{video.id} has no captions and no URL to download its audio from")
    from yttl.sources.download import download_audio

    observer.phase("download")
    seen_total = 0
    seen_done = 0

    def progress(done: int, total: int | None) -> None:
        nonlocal seen_total, seen_done
        if total and total != seen_total:
            observer.progress("download_total", total - seen_total)
            seen_total = total
        observer.progress("download_done", done - seen_done)
        seen_done = done

    params = _ytdlp_params(settings)
    with tracker.phase("download"):
        return await asyncio.to_thread(download_audio, video, params, workdir, progress)


def _ytdlp_params(settings: Settings) -> dict[str, object]:
    return ytdlp_params(
        cookies=settings.cookies,
        cookies_from_browser=settings.cookies_from_browser,
        extra=settings.yt_dlp_options,
    )


async def _sponsor_filter(
    video: VideoInfo, settings: Settings, segments: AsyncIterator[TranscriptSegment]
) -> AsyncIterator[TranscriptSegment]:
    skipped: list[tuple[float, float]] | None = None
    if settings.sponsorblock and video.is_youtube:
        skipped = await fetch_segments(
            video.id, settings.sponsorblock, api_base=settings.sponsorblock_api
        )
    removed = 0
    async for segment in segments:
        if skipped and not remove_segments([segment], skipped):
            removed += 1
            continue
        yield segment
    if removed:
        logger.info("SponsorBlock removed %d transcript lines", removed)


async def _collect(
    segments: AsyncIterator[TranscriptSegment], into: list[TranscriptSegment],
    observer: RunObserver, tracker: PerformanceTracker, phase: str,
) -> AsyncIterator[TranscriptSegment]:  # fmt: skip
    """Record every segment for the outputs, report progress, and time the stream."""
    started = time.perf_counter()
    reported = 0.0
    async for segment in segments:
        into.append(segment)
        if segment.end > reported + 1:
            observer.progress("audio_done", int(segment.end - reported))
            reported = float(int(segment.end))
        yield segment
    tracker.add_phase(phase, time.perf_counter() - started)


def plan_for(video: VideoInfo, settings: Settings) -> SectionPlan:
    if settings.sections == "chapters":
        if video.chapters:
            return plan_chapters(video.duration, video.chapters)
        logger.warning("the video has no chapters; using 5-minute sections")
    return plan_fixed(video.duration)


async def process_video(
    source: str,
    settings: Settings,
    *,
    observer: RunObserver | None = None,
    tracker: PerformanceTracker | None = None,
    provider: LLMProvider | None = None,
    transcriber: Transcriber | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Summarize one video. Raises ``yttl.errors.YttlError`` subclasses on bad input."""
    observer = observer or NullObserver()
    concurrency = max_concurrent_llm(settings, environ)
    tracker = tracker or PerformanceTracker(max_concurrent_llm=concurrency)
    tracker.max_concurrent_llm = concurrency
    # Build the provider first: a missing key must fail before any download.
    if provider is None and not settings.transcript_only:
        provider = build_llm(settings, environ)
    try:
        with MemorySampler() as memory, tempfile.TemporaryDirectory(prefix="yttl-") as work:
            observer.phase("resolve")
            with tracker.phase("resolve"):
                video = resolve_source(source, _ytdlp_params(settings))
            observer.phase("captions")
            stream = await _captions(video, settings, tracker)
            if stream is None:
                transcriber = transcriber or build_transcriber(settings, environ)
                audio = await _audio_path(video, settings, Path(work), observer, tracker)
                if video.duration <= 0:
                    duration, _ = await asyncio.to_thread(probe_media, audio)
                    video = replace(video, duration=duration)
                source_kind: TranscriptSource = (
                    "local_whisper" if transcriber.name == "local_whisper" else "api_whisper"
                )
                stream = _TranscriptStream(transcriber.transcribe(audio), source_kind,
                                           settings.language, transcriber)  # fmt: skip
                observer.phase("transcribe")
                observer.progress("audio_total", int(video.duration))
            stream.collected = []
            segments = _collect(
                _sponsor_filter(video, settings, stream.segments), stream.collected, observer,
                tracker, "transcribe" if stream.transcriber else "captions",
            )  # fmt: skip

            if settings.transcript_only or provider is None:
                async for _ in segments:
                    pass
                return _result(video, stream, (), [], tracker, memory, None)

            if video.duration <= 0:  # captions of a video whose length nobody reported
                async for _ in segments:
                    pass
                end = max((s.end for s in stream.collected), default=0.0)
                if end <= 0:
                    raise InputError(f"{video.id} has no duration and an empty transcript")
                video = replace(video, duration=end)
                segments = _iterate(list(stream.collected))
                stream.collected = list(stream.collected)
            plan = plan_for(video, settings)
            engine = SummaryEngine(
                provider,
                EngineOptions(concurrency, settings.sequential, settings.max_output_tokens),
                tracker=tracker,
                on_progress=observer.progress,
            )
            if stream.transcriber is None:
                observer.phase("summarize")
            with tracker.phase("summarize"):
                hours = await engine.run(plan, stream_sections(segments, plan))
            return _result(video, stream, hours, engine.failures, tracker, memory, provider)
    finally:
        if provider is not None:
            await provider.aclose()


def _result(
    video: VideoInfo,
    stream: _TranscriptStream,
    hours: Iterable[object],
    failures: Iterable[object],
    tracker: PerformanceTracker,
    memory: MemorySampler,
    provider: LLMProvider | None,
) -> RunResult:
    if stream.transcriber is not None:
        stats = stream.transcriber.stats
        tracker.count("audio_seconds", stats.audio_seconds)
        tracker.count("speech_seconds", stats.speech_seconds)
        tracker.count("silence_skipped_seconds", stats.silence_skipped_seconds)
        tracker.count("chunks", stats.chunks)
        tracker.transcription = {"provider": stats.provider, "model": stats.model,
                                 **stats.options}  # fmt: skip
    memory.sample()
    tracker.memory_peak_bytes = max(tracker.memory_peak_bytes, memory.peak_bytes)
    return RunResult(
        video,
        stream.transcript(),
        tuple(hours),  # type: ignore[arg-type]
        tuple(failures),  # type: ignore[arg-type]
        stats=tracker.stats(),
        provider=provider.name if provider else None,
        model=provider.model if provider else None,
        prompt_version=prompts.PROMPT_VERSION if provider else None,
    )
