"""Local speech-to-text on faster-whisper (CTranslate2), streamed chunk by chunk.

Decoding runs one chunk ahead in its own thread; the model runs in another and hands
each segment to the event loop as soon as it exists, so section summaries start while
later audio is still being transcribed. Silent chunks never reach the model; within a
chunk, Silero VAD (as faster-whisper ships it) skips the pauses.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from yttl.errors import MissingDependencyError, ProcessingError, YttlError
from yttl.models import TranscriptSegment
from yttl.transcribe.audio import AudioChunk, active_seconds, decode_stream, iter_chunks
from yttl.transcribe.base import TranscriptionStats
from yttl.transcribe.chunking import ChunkPlan

__all__ = ["FasterWhisperTranscriber", "SilenceOptions", "is_hallucination", "stream_in_thread"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_NOT_WORDS = re.compile(r"^[\W_]*(\[[^\]]*\]|\([^)]*\)|♪+)?[\W_]*$")


@dataclass(frozen=True)
class SilenceOptions:
    vad: bool = True
    threshold_db: float = -40.0
    min_silence_seconds: float = 2.0


def is_hallucination(text: str, no_speech_prob: float, avg_logprob: float,
                     compression_ratio: float) -> bool:  # fmt: skip
    """Whisper's own rule for silence plus repetition loops and music captions."""
    if no_speech_prob > 0.6 and avg_logprob < -1.0:
        return True
    if compression_ratio > 2.4:
        return True
    return bool(_NOT_WORDS.match(text.strip()))


class _Done:
    pass


def _prefetch(items: Iterator[T], stop: threading.Event, depth: int = 1) -> Iterator[T]:
    """Run ``items`` one step ahead in a thread (decoding overlaps transcription)."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)

    def fill() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(_Done())
        except BaseException as exc:
            box.put(exc)

    threading.Thread(target=fill, name="yttl-decode", daemon=True).start()
    while True:
        item = box.get()
        if isinstance(item, _Done):
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def stream_in_thread(
    produce: Iterator[T], stop: threading.Event, name: str = "yttl-worker"
) -> AsyncIterator[T]:
    """Items of a blocking generator, produced in a thread and delivered on the loop."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def work() -> None:
        try:
            for item in produce:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
                if stop.is_set():
                    break
            loop.call_soon_threadsafe(inbox.put_nowait, _Done())
        except BaseException as exc:
            loop.call_soon_threadsafe(inbox.put_nowait, exc)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = await inbox.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class FasterWhisperTranscriber:
    name = "local_whisper"

    def __init__(
        self,
        model: str,
        plan: ChunkPlan,
        *,
        language: str | None = "en",
        silence: SilenceOptions | None = None,
        download_root: str | None = None,
    ) -> None:
        self._model_name = model
        self._plan = plan
        self._language = language
        self._silence = silence or SilenceOptions()
        self._download_root = download_root
        self._model: Any = None
        self._pipeline: Any = None
        self.stats = TranscriptionStats(
            "local_whisper", model, {**asdict(plan), **asdict(self._silence)}
        )

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("faster-whisper is not installed") from exc
        try:
            self._model = WhisperModel(
                self._model_name,
                device=self._plan.device,
                compute_type=self._plan.compute_type,
                cpu_threads=self._plan.cpu_threads,
                download_root=self._download_root,
            )
        except Exception as exc:
            raise ProcessingError(
                f"cannot load the whisper model {self._model_name!r}: {exc}",
                hint="give a faster-whisper model name (tiny.en, base.en, small, ...) or the "
                "directory of a CTranslate2 model with --local-whisper-model",
            ) from exc
        self._pipeline = BatchedInferencePipeline(self._model)

    def _chunk_segments(self, chunk: AudioChunk) -> Iterator[TranscriptSegment]:
        stats, silence = self.stats, self._silence
        stats.chunks += 1
        stats.audio_seconds += chunk.seconds
        if silence.vad:
            active = active_seconds(chunk.samples, silence.threshold_db, silence.min_silence_seconds)
            if active < 0.5:  # nothing above the silence threshold: no model time at all
                stats.skipped_chunks += 1
                logger.debug("chunk %d at %.1f s is silent; skipped", chunk.index, chunk.offset)
                return
            segments, info = self._pipeline.transcribe(
                chunk.samples,
                language=self._language,
                batch_size=self._plan.batch_size,
                vad_filter=True,
                condition_on_previous_text=False,
            )
            stats.speech_seconds += info.duration_after_vad
        else:  # the original behaviour: every second through the model, one window at a time
            segments, info = self._model.transcribe(
                chunk.samples, language=self._language, vad_filter=False
            )
            stats.speech_seconds += chunk.seconds
        stats.language = info.language
        logger.debug("chunk %d: %.1f s at %.1f s, %.1f s of speech", chunk.index, chunk.seconds,
                     chunk.offset, getattr(info, "duration_after_vad", chunk.seconds))  # fmt: skip
        for segment in segments:
            text = segment.text.strip()
            if is_hallucination(text, segment.no_speech_prob, segment.avg_logprob,
                                segment.compression_ratio):  # fmt: skip
                stats.dropped_segments += 1
                continue
            start = chunk.offset + max(segment.start, 0.0)
            end = chunk.offset + min(max(segment.end, segment.start), chunk.seconds)
            yield TranscriptSegment(round(start, 3), round(end, 3), text)

    def segments(self, audio: Path, stop: threading.Event) -> Iterator[TranscriptSegment]:
        """The blocking generator behind ``transcribe``: usable without an event loop."""
        self._load()
        chunks = iter_chunks(
            decode_stream(audio), self._plan.chunk_seconds, self._plan.search_seconds
        )
        last_end = 0.0
        for chunk in _prefetch(chunks, stop):
            if stop.is_set():
                return
            for segment in self._chunk_segments(chunk):
                # times stay monotonic across chunk boundaries
                start = max(segment.start, last_end)
                last_end = max(segment.end, start)
                yield TranscriptSegment(start, last_end, segment.text)

    async def transcribe(self, audio: Path) -> AsyncIterator[TranscriptSegment]:
        stop = threading.Event()
        try:
            async for segment in stream_in_thread(self.segments(audio, stop), stop,
                                                  "yttl-whisper"):  # fmt: skip
                yield segment
        except YttlError:
            raise
        except Exception as exc:
            raise ProcessingError(f"transcription failed: {type(exc).__name__}: {exc}") from exc
