"""Local speech-to-text on faster-whisper (CTranslate2), streamed chunk by chunk.

Decoding runs one chunk ahead in its own thread; the model runs in another and hands
each segment to the event loop as soon as it exists, so section summaries start while
later audio is still being transcribed. Silent chunks never reach the model; within a
chunk, Silero VAD (as faster-whisper ships it) finds the speech, which is packed into
full 30 s windows (``windows.py``) and decoded in batches with a beam.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yttl.errors import MissingDependencyError, ProcessingError, YttlError
from yttl.messages import whisper_model_error
from yttl.models import TranscriptSegment
from yttl.transcribe.audio import (
    SAMPLE_RATE,
    AudioChunk,
    active_seconds,
    decode_stream,
    iter_chunks,
)
from yttl.transcribe.base import ChunkRecord, ChunkStore, MonotonicClock, TranscriptionStats
from yttl.transcribe.chunking import ChunkPlan
from yttl.transcribe.threads import prefetch, stream_in_thread
from yttl.transcribe.windows import (
    LOOP_COMPRESSION,
    SpeechWindow,
    is_hallucination,
    speech_windows,
    split_at_pauses,
)

__all__ = ["FasterWhisperTranscriber", "SilenceOptions", "WhisperModelHolder"]

logger = logging.getLogger(__name__)
VAD_SLICE_SECONDS = 60
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class SilenceOptions:
    vad: bool = True
    threshold_db: float = -40.0
    min_silence_seconds: float = 2.0
    vad_threshold: float = 0.5  # Silero's speech probability threshold


class _Adaptation:
    """Tunes chunk length and the VAD from the speech ratio of the chunks seen so far.

    Mostly silent audio gets longer chunks (VAD makes silence cheap, so fewer, larger
    model calls win); loud audio in which the VAD finds little speech is music or noise,
    where Whisper hallucinates, so the VAD gets stricter.
    """

    FIRST_CHUNK_SECONDS = 120.0

    def __init__(self, plan: ChunkPlan, silence: SilenceOptions) -> None:
        self.base_seconds = plan.chunk_seconds
        # A short first chunk gets the model (and the first summaries) going early; the
        # decoding and VAD of every later chunk then overlap the model's work.
        self.seconds = plan.chunk_seconds
        if plan.strategy == "adaptive":
            self.seconds = min(plan.chunk_seconds, self.FIRST_CHUNK_SECONDS)
        self.vad_threshold = silence.vad_threshold
        self.adaptive = plan.strategy == "adaptive"

    def observe(self, chunk_seconds: float, loud_seconds: float, speech_seconds: float) -> None:
        if not self.adaptive or chunk_seconds <= 0:
            return
        speech = speech_seconds / chunk_seconds
        loud = loud_seconds / chunk_seconds
        self.seconds = self.base_seconds * (2.0 if speech < 0.2 else 1.0)
        if loud > 0.8 and speech < 0.3 and self.vad_threshold < 0.65:
            self.vad_threshold = 0.65
            logger.debug("little speech in loud audio (music?): VAD threshold raised to 0.65")


@dataclass(frozen=True)
class _Prepared:
    chunk: AudioChunk
    loud_seconds: float
    windows: list[SpeechWindow] | None  # None: VAD off
    done: ChunkRecord | None = None  # transcribed by an earlier run


class WhisperModelHolder:
    """One loaded Whisper model (and its batched pipeline), loaded on first use and shared
    by every transcriber of a run: a batch of videos loads the model once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}

    def get(self, name: str, plan: ChunkPlan, download_root: str | None) -> tuple[Any, Any]:
        key = (name, plan.device, plan.compute_type, plan.cpu_threads)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._load(name, plan, download_root)
            return self._loaded[key]

    @staticmethod
    def _load(name: str, plan: ChunkPlan, download_root: str | None) -> tuple[Any, Any]:
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("faster-whisper is not installed") from exc
        try:
            model = WhisperModel(
                name,
                device=plan.device,
                compute_type=plan.compute_type,
                cpu_threads=plan.cpu_threads,
                download_root=download_root,
            )
        except Exception as exc:
            raise whisper_model_error(name, exc) from exc
        return model, BatchedInferencePipeline(model)


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
        holder: WhisperModelHolder | None = None,
    ) -> None:
        self._holder = holder or WhisperModelHolder()
        self._store: ChunkStore | None = None
        self._model_name = model
        self._plan = plan
        self._language = language
        self._silence = silence or SilenceOptions()
        self._download_root = download_root
        self._model: Any = None
        self._pipeline: Any = None
        self._adapt = _Adaptation(plan, self._silence)
        self.stats = TranscriptionStats(
            "local_whisper", model,
            {**asdict(plan), **asdict(self._silence), "speech_windows": "packed"},
        )  # fmt: skip

    def _load(self) -> None:
        if self._model is None:
            self._model, self._pipeline = self._holder.get(
                self._model_name, self._plan, self._download_root
            )

    def _prepare(self, chunk: AudioChunk) -> _Prepared:
        """Loudness and speech spans of a chunk: runs in the decoding thread, so the VAD of
        the next chunk overlaps the model's work on this one."""
        silence = self._silence
        done = self._store.get(chunk.offset, chunk.seconds) if self._store else None
        if done is not None and done.covered is None:  # finished: no VAD, no model
            return _Prepared(chunk, done.loud_seconds, None, done)
        if not silence.vad:
            return _Prepared(chunk, chunk.seconds, None)
        loud = active_seconds(chunk.samples, silence.threshold_db, silence.min_silence_seconds)
        if loud < 0.5:  # nothing above the silence threshold: no VAD, no model
            return _Prepared(chunk, loud, [])
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(threshold=self._adapt.vad_threshold, min_silence_duration_ms=160,
                             max_speech_duration_s=30)  # fmt: skip
        # Silero's memory grows with its input; a minute at a time keeps it flat, and
        # spans cut at a slice edge meet again in one window of ``speech_windows``.
        step = VAD_SLICE_SECONDS * SAMPLE_RATE
        spans = [
            {"start": span["start"] + base, "end": span["end"] + base}
            for base in range(0, len(chunk.samples), step)
            for span in get_speech_timestamps(chunk.samples[base : base + step], options)
        ]
        return _Prepared(chunk, loud, speech_windows(spans), done)

    def _chunk_segments(
        self, prepared: _Prepared, checkpoint: Callable[[float], None] = lambda covered: None
    ) -> Iterator[TranscriptSegment]:
        """A chunk's segments; ``checkpoint(seconds)`` after each speech window is done.
        Windows an earlier run finished (``prepared.done.covered``) are not redone."""
        chunk, stats = prepared.chunk, self.stats
        stats.chunks += 1
        stats.audio_seconds += chunk.seconds
        if prepared.windows is None:  # the original behaviour: every second through the model
            segments, info = self._model.transcribe(
                chunk.samples,
                language=self._language,
                vad_filter=False,
                beam_size=self._plan.beam_size,
            )
            stats.speech_seconds += chunk.seconds
            stats.language = info.language
            for segment in segments:
                yield from self._kept(
                    chunk, segment, [(segment.start, segment.end, segment.text.strip())]
                )
            return
        if not prepared.windows:
            stats.skipped_chunks += 1
            self._adapt.observe(chunk.seconds, prepared.loud_seconds, 0.0)
            logger.debug("chunk %d at %.1f s has no speech; skipped", chunk.index, chunk.offset)
            return
        speech = sum(window.speech_seconds for window in prepared.windows)
        stats.speech_seconds += speech
        self._adapt.observe(chunk.seconds, prepared.loud_seconds, speech)
        covered = prepared.done.covered if prepared.done and prepared.done.covered else 0.0
        windows = [window for window in prepared.windows if window.end > covered + 1e-6]
        if not windows:
            return
        spans = [span for window in windows for span in window.spans]
        packed = np.concatenate([chunk.samples[start:end] for start, end in spans])
        clips, at = [], 0
        for window in windows:  # where each window lies in ``packed``
            length = sum(end - start for start, end in window.spans)
            clips.append({"start": at / SAMPLE_RATE, "end": (at + length) / SAMPLE_RATE})
            at += length
        segments, info = self._pipeline.transcribe(
            packed,
            language=self._language,
            batch_size=self._plan.batch_size,
            clip_timestamps=clips,
            beam_size=self._plan.beam_size,
            condition_on_previous_text=False,
        )
        stats.language = info.language
        logger.debug("chunk %d: %.1f s at %.1f s, %.1f s of speech in %d windows", chunk.index,
                     chunk.seconds, chunk.offset, speech, len(windows))  # fmt: skip
        in_audio = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in spans]
        for segment in segments:
            text = segment.text.strip()
            pieces = split_at_pauses(text, max(segment.start, 0.0), segment.end, in_audio)
            if not pieces:
                continue
            if segment.compression_ratio > LOOP_COMPRESSION:
                # The batched pipeline decodes once, at temperature 0, with no fallback: a
                # repetition loop there would cost the whole window. Decode the window
                # again the way Whisper does, with rising temperatures.
                stats.fallback_windows += 1
                yield from self._fallback(chunk, pieces[0][0], pieces[-1][1])
            else:
                yield from self._kept(chunk, segment, pieces)
            checkpoint(pieces[-1][1])

    def _kept(self, chunk: AudioChunk, segment: Any,
              pieces: list[tuple[float, float, str]]) -> Iterator[TranscriptSegment]:  # fmt: skip
        """``segment``'s ``pieces`` (seconds into ``chunk``) unless Whisper made it up."""
        if is_hallucination(segment.text.strip(), segment.no_speech_prob, segment.avg_logprob,
                            segment.compression_ratio):  # fmt: skip
            self.stats.dropped_segments += 1
            return
        for start, end, text in pieces:
            start = chunk.offset + max(start, 0.0)
            end = min(chunk.offset + end, chunk.offset + chunk.seconds)
            yield TranscriptSegment(round(start, 3), round(max(end, start), 3), text)

    def _fallback(self, chunk: AudioChunk, start: float, end: float) -> Iterator[TranscriptSegment]:
        window = chunk.samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        segments, _ = self._model.transcribe(
            window, language=self._language, vad_filter=False, beam_size=self._plan.beam_size,
            temperature=FALLBACK_TEMPERATURES, compression_ratio_threshold=LOOP_COMPRESSION,
            condition_on_previous_text=False,
        )  # fmt: skip
        for segment in segments:
            piece = (start + segment.start, start + segment.end, segment.text.strip())
            yield from self._kept(chunk, segment, [piece])

    def segments(self, audio: Path, stop: threading.Event,
                 chunks: ChunkStore | None = None) -> Iterator[TranscriptSegment]:  # fmt: skip
        """The blocking generator behind ``transcribe``: usable without an event loop."""
        self._store = chunks
        self._load()
        audio_chunks = iter_chunks(
            decode_stream(audio), lambda: self._adapt.seconds, self._plan.search_seconds
        )
        clock = MonotonicClock()
        for prepared in prefetch(map(self._prepare, audio_chunks), stop):
            if stop.is_set():
                return
            for segment in self._chunk_kept(prepared):
                yield clock(segment)
                if stop.is_set():
                    return  # this window is redone next time; those before it are kept

    def _chunk_kept(self, prepared: _Prepared) -> Iterator[TranscriptSegment]:
        """A chunk's segments, with its progress kept in the store as it goes: a chunk an
        earlier run finished comes from there, one it left half done goes on from there."""
        chunk, stats, store, done = prepared.chunk, self.stats, self._store, prepared.done
        if done is not None and done.covered is None:
            stats.chunks += 1
            stats.resumed_chunks += 1
            stats.audio_seconds += chunk.seconds
            stats.speech_seconds += done.speech_seconds
            self._adapt.observe(chunk.seconds, prepared.loud_seconds, done.speech_seconds)
            yield from done.segments
            return
        speech_before = stats.speech_seconds
        made: list[TranscriptSegment] = list(done.segments) if done is not None else []
        if made:
            stats.resumed_chunks += 1
        yield from made  # the part an earlier run finished

        def keep(covered: float | None) -> None:
            if store is not None:
                speech = stats.speech_seconds - speech_before
                record = ChunkRecord(tuple(made), prepared.loud_seconds, speech, covered)
                store.put(chunk.offset, chunk.seconds, record)

        for segment in self._chunk_segments(prepared, keep):
            made.append(segment)
            yield segment
        keep(None)

    async def transcribe(
        self, audio: Path, chunks: ChunkStore | None = None
    ) -> AsyncIterator[TranscriptSegment]:
        stop = threading.Event()
        try:
            async for segment in stream_in_thread(self.segments(audio, stop, chunks), stop,
                                                  "yttl-whisper"):  # fmt: skip
                yield segment
        except YttlError:
            raise
        except Exception as exc:
            raise ProcessingError(f"transcription failed: {type(exc).__name__}: {exc}") from exc
