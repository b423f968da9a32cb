"""``process_video``: source -> transcript -> sections -> summaries, as a library call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Protocol

from yttl.config import Settings
from yttl.errors import InputError, NetworkError
from yttl.factory import build_llm, max_concurrent_llm
from yttl.llm.base import LLMProvider
from yttl.models import RunResult, Transcript, TranscriptSegment, VideoInfo
from yttl.perf import MemorySampler, PerformanceTracker
from yttl.sources import choose_track, fetch_track_text, parse_captions, resolve_source
from yttl.sources.sponsorblock import fetch_segments, remove_segments
from yttl.sources.ytdlp import ytdlp_params
from yttl.summarize import prompts
from yttl.summarize.engine import EngineOptions, SummaryEngine
from yttl.summarize.sections import SectionPlan, plan_chapters, plan_fixed, stream_sections

__all__ = ["NullObserver", "RunObserver", "get_transcript", "plan_for", "process_video"]

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """What the CLI (or any caller) hears of a run's progress."""

    def phase(self, name: str) -> None: ...

    def progress(self, kind: str, amount: int) -> None: ...


class NullObserver:
    def phase(self, name: str) -> None:
        pass

    def progress(self, kind: str, amount: int) -> None:
        pass


async def get_transcript(
    video: VideoInfo, settings: Settings, tracker: PerformanceTracker
) -> Transcript:
    """The preferred caption track; transcription when there is none."""
    if not settings.force_local_transcribe:
        track = choose_track(video, settings.language)
        if track is not None:
            with tracker.phase("captions"):
                try:
                    text = await fetch_track_text(track)
                except NetworkError as exc:
                    logger.warning("%s; falling back to transcription", exc.message)
                else:
                    segments = parse_captions(text, track.ext)
                    return Transcript(tuple(segments), "captions", track.language, track)
    raise InputError(
        f"{video.id} has no usable caption track in {settings.language!r}",
        hint="try --language with another language code",
    )


def plan_for(video: VideoInfo, settings: Settings) -> SectionPlan:
    if settings.sections == "chapters":
        if video.chapters:
            return plan_chapters(video.duration, video.chapters)
        logger.warning("the video has no chapters; using 5-minute sections")
    return plan_fixed(video.duration)


async def _filter_sponsors(
    video: VideoInfo, segments: tuple[TranscriptSegment, ...], settings: Settings
) -> tuple[TranscriptSegment, ...]:
    if not settings.sponsorblock or not video.is_youtube:
        return segments
    skipped = await fetch_segments(
        video.id, settings.sponsorblock, api_base=settings.sponsorblock_api
    )
    if not skipped:
        return segments
    kept = remove_segments(segments, skipped)
    logger.info("SponsorBlock removed %d of %d caption lines", len(segments) - len(kept),
                len(segments))  # fmt: skip
    return tuple(kept)


async def _iterate(items: Iterable[TranscriptSegment]) -> AsyncIterator[TranscriptSegment]:
    for item in items:
        yield item


async def process_video(
    source: str,
    settings: Settings,
    *,
    observer: RunObserver | None = None,
    tracker: PerformanceTracker | None = None,
    provider: LLMProvider | None = None,
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
        with MemorySampler() as memory:
            observer.phase("resolve")
            with tracker.phase("resolve"):
                params = ytdlp_params(
                    cookies=settings.cookies,
                    cookies_from_browser=settings.cookies_from_browser,
                    extra=settings.yt_dlp_options,
                )
                video = resolve_source(source, params)
            observer.phase("captions")
            transcript = await get_transcript(video, settings, tracker)
            segments = await _filter_sponsors(video, transcript.segments, settings)
            transcript = Transcript(segments, transcript.source, transcript.language,
                                    transcript.track)  # fmt: skip
            if settings.transcript_only or provider is None:
                tracker.memory_peak_bytes = memory.peak_bytes
                return RunResult(video, transcript, (), stats=tracker.stats())

            plan = plan_for(video, settings)
            engine = SummaryEngine(
                provider,
                EngineOptions(concurrency, settings.sequential, settings.max_output_tokens),
                tracker=tracker,
                on_progress=observer.progress,
            )
            observer.phase("summarize")
            with tracker.phase("summarize"):
                hours = await engine.run(plan, stream_sections(_iterate(segments), plan))
        tracker.memory_peak_bytes = memory.peak_bytes
        return RunResult(
            video,
            transcript,
            tuple(hours),
            tuple(engine.failures),
            stats=tracker.stats(),
            provider=provider.name,
            model=provider.model,
            prompt_version=prompts.PROMPT_VERSION,
        )
    finally:
        if provider is not None:
            await provider.aclose()
