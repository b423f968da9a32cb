"""The transcript stage: captions when there are any, else audio through a transcriber.

Either way the result is a stream of time-ordered segments (all at once from captions,
one by one from whisper), filtered by SponsorBlock and recorded for the outputs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from yttl.aio import blocking
from yttl.cache import ResultsCache, transcript_key
from yttl.errors import InputError, NetworkError, ProviderError, ResourceError, YttlError
from yttl.models import CaptionTrack, Transcript, TranscriptSegment, TranscriptSource, VideoInfo
from yttl.perf import PerformanceTracker
from yttl.sources import choose_track, fetch_track_text, parse_captions
from yttl.sources.sponsorblock import fetch_segments, remove_segments
from yttl.transcribe.base import Transcriber

__all__ = ["RunObserver", "TranscriptOptions", "TranscriptStream", "caption_stream", "collect",
           "iterate", "sponsor_filter", "whisper_stream"]  # fmt: skip

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """What the CLI (or any caller) hears of a run's progress.

    ``progress`` kinds: ``total``/``done`` (LLM calls), ``download_total``/``download_done``
    (bytes), ``audio_total``/``audio_done`` (seconds transcribed).
    """

    def phase(self, name: str) -> None: ...

    def progress(self, kind: str, amount: int) -> None: ...


@dataclass(frozen=True)
class TranscriptOptions:
    """What the transcript stage needs to know, built once from the settings."""

    language: str | None = "en"
    force_transcription: bool = False
    caption_attempts: int = 3
    ytdlp_params: Mapping[str, Any] = field(default_factory=dict)
    sponsorblock: tuple[str, ...] = ()
    sponsorblock_api: str = "https://sponsor.ajay.app"


@dataclass
class TranscriptStream:
    """Segments as they come, and a record of all of them for the outputs."""

    segments: AsyncIterator[TranscriptSegment]
    source: TranscriptSource
    language: str | None
    transcriber: Transcriber | None = None
    audio: Path | None = None
    collected: list[TranscriptSegment] = field(default_factory=list)
    on_complete: Callable[[list[TranscriptSegment]], None] | None = None
    error: YttlError | None = None  # the transcription failed part way: what came is kept

    def cut(self) -> str | None:
        """Why the transcript stops short, if it does."""
        return f"not transcribed: {self.error.message}" if self.error is not None else None

    def transcript(self) -> Transcript:
        language = self.language
        if self.transcriber is not None:
            language = self.transcriber.stats.language or language
        return Transcript(tuple(self.collected), self.source, language)


async def iterate(items: Iterable[TranscriptSegment]) -> AsyncIterator[TranscriptSegment]:
    for item in items:
        yield item


async def caption_stream(
    video: VideoInfo, options: TranscriptOptions, tracker: PerformanceTracker
) -> TranscriptStream | None:
    """The preferred caption track, or None when there is none or it cannot be had."""
    if options.force_transcription:
        return None
    wanted = options.language or "en"
    track = choose_track(video, wanted)
    if track is None:
        logger.info("no caption track in %r; transcribing the audio", wanted)
        return None
    spoken = track.language.removesuffix("-orig")
    if spoken.split("-")[0] not in (wanted.split("-")[0], "und"):
        logger.warning("no %s captions; using the video's own %s captions instead of "
                       "transcribing", wanted, spoken)  # fmt: skip
    with tracker.phase("captions"):
        try:
            text = await _fetch_with_retries(track, options.caption_attempts, tracker)
        except NetworkError as exc:
            logger.warning("%s; falling back to transcription", exc.message)
            return None
    try:
        segments = parse_captions(text, track.ext)
    except InputError as exc:  # never an empty transcript from a file that had text
        if video.media_path is None and not video.url.startswith(("http://", "https://")):
            raise  # no audio to fall back on
        logger.warning("%s; transcribing the audio instead", exc.message)
        return None
    return TranscriptStream(iterate(segments), "captions", track.language)


async def _fetch_with_retries(track: CaptionTrack, attempts: int,
                              tracker: PerformanceTracker) -> str:  # fmt: skip
    """Caption download with backoff and a timeout that doubles each attempt (10, 20,
    40 s); a 404 or 403 (an expired URL) is not worth repeating."""
    tries = 0

    def transient(error: BaseException) -> bool:
        return isinstance(error, NetworkError) and error.status not in (401, 403, 404, 410)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(max(attempts, 1)), retry=retry_if_exception(transient),
        wait=wait_exponential(multiplier=0.5, max=8), reraise=True,
    ):  # fmt: skip
        with attempt:
            tries += 1
            if tries > 1:
                tracker.count("retries")
            return await fetch_track_text(track, timeout=10.0 * 2 ** (tries - 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def whisper_stream(
    video: VideoInfo,
    options: TranscriptOptions,
    transcriber: Transcriber,
    workdir: Path,
    observer: RunObserver,
    tracker: PerformanceTracker,
    cache: ResultsCache,
    stop: asyncio.Event | None = None,
) -> TranscriptStream:
    """Audio through ``transcriber``; a transcript made before with the same source and
    options comes from the cache instead, and a new one goes into it when complete."""
    source: TranscriptSource = (
        "local_whisper" if transcriber.name == "local_whisper" else "api_whisper"
    )
    identity: object = video.url
    if video.media_path is not None:
        stat = os.stat(video.media_path)
        identity = (video.media_path, stat.st_size, stat.st_mtime_ns)
    key = transcript_key(str(identity), {"provider": transcriber.stats.provider,
                                         "model": transcriber.stats.model,
                                         **transcriber.stats.options})  # fmt: skip
    cached = cache.get_transcript(key)
    if cached is not None:
        tracker.count("cache_hits")
        segments, language = cached
        return TranscriptStream(iterate(segments), source, language)
    audio = await audio_path(video, options, workdir, observer, tracker, stop)
    chunks = cache.chunk_store(key)  # a rerun transcribes only what is missing
    stream = TranscriptStream(transcriber.transcribe(audio, chunks), source, options.language,
                              transcriber, audio=audio)  # fmt: skip
    stream.on_complete = lambda segments: cache.put_transcript(
        key, segments, transcriber.stats.language
    )
    return stream


async def audio_path(
    video: VideoInfo, options: TranscriptOptions, workdir: Path, observer: RunObserver,
    tracker: PerformanceTracker, stop: asyncio.Event | None = None,
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

    with tracker.phase("download"):  # off the loop, and Ctrl-C does not wait for it
        return await blocking(download_audio, video, dict(options.ytdlp_params), workdir,
                              progress, stop=stop, name="yttl-download")  # fmt: skip


async def sponsor_filter(
    video: VideoInfo, options: TranscriptOptions, segments: AsyncIterator[TranscriptSegment]
) -> AsyncIterator[TranscriptSegment]:
    skipped: list[tuple[float, float]] | None = None
    if options.sponsorblock and video.is_youtube:
        skipped = await fetch_segments(
            video.id, options.sponsorblock, api_base=options.sponsorblock_api
        )
    removed = 0
    async for segment in segments:
        if skipped and not remove_segments([segment], skipped):
            removed += 1
            continue
        yield segment
    if removed:
        logger.info("SponsorBlock removed %d transcript lines", removed)


async def collect(
    stream: TranscriptStream, segments: AsyncIterator[TranscriptSegment],
    observer: RunObserver, tracker: PerformanceTracker, stop: asyncio.Event | None = None,
) -> AsyncIterator[TranscriptSegment]:  # fmt: skip
    """Record every segment for the outputs, report progress, and time the stream; when
    it is complete, hand it to ``stream.on_complete`` (the cache). ``stop`` ends it early."""
    started = time.perf_counter()
    reported = 0.0
    try:
        async for segment in segments:
            if stop is not None and stop.is_set():
                await segments.aclose()  # type: ignore[attr-defined]
                return
            stream.collected.append(segment)
            if segment.end > reported + 1:
                observer.progress("audio_done", int(segment.end - reported))
                reported = float(int(segment.end))
            yield segment
    except (ProviderError, ResourceError) as exc:  # the transcriber gave up part way
        if not stream.collected and stream.transcriber is not None:
            raise  # nothing to keep: the run fails as a whole
        logger.warning("transcription stopped at %.0f s: %s", reported, exc.message)
        stream.error = exc
        return
    if stream.transcriber is not None:  # captions were timed when downloaded; reading
        # them here only spans the summaries that consume them
        tracker.add_phase("transcribe", time.perf_counter() - started)
    if stream.on_complete is not None:
        stream.on_complete(stream.collected)
