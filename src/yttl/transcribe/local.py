"""Local speech-to-text on faster-whisper (CTranslate2), streamed chunk by chunk.

Decoding and the VAD run one chunk ahead in their own thread; the windows then go through
the model in small batches, several at once (``batching.py``), and each segment reaches
the event loop, in order, as soon as its batch is done, so section summaries start while
later audio is still being transcribed. Silent chunks never reach
the model; within a chunk, Silero VAD (as faster-whisper ships it) finds the speech, which
is packed into full 30 s windows (``windows.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from yttl.errors import ProcessingError, YttlError
from yttl.models import TranscriptSegment
from yttl.transcribe.audio import (
    SAMPLE_RATE,
    AudioChunk,
    active_seconds,
    decode_stream,
    iter_chunks,
)
from yttl.transcribe.base import ChunkRecord, ChunkStore, MonotonicClock, TranscriptionStats
from yttl.transcribe.batching import WhisperDecoder, WhisperModelHolder, WindowText, in_order
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
    """A chunk ready for the model: made in the decoding thread (loudness, VAD)."""

    chunk: AudioChunk
    loud_seconds: float
    windows: list[SpeechWindow] | None  # None: VAD off
    done: ChunkRecord | None = None  # transcribed by an earlier run
    todo: tuple[SpeechWindow, ...] = ()  # the windows left to decode, in order

    @property
    def speech_seconds(self) -> float:
        return sum(window.speech_seconds for window in self.windows or ())


@dataclass(frozen=True)
class _Batch:
    """Some of a chunk's windows, decoded together by one model worker; a chunk is one or
    more batches in a row (one with no windows when nothing of it needs the model)."""

    prepared: _Prepared
    windows: tuple[SpeechWindow, ...]
    first: bool
    last: bool


class _Progress:
    """A chunk being transcribed: what it has made so far, kept in the store as each of
    its windows is done, so that a rerun goes on from there."""

    def __init__(self, prepared: _Prepared, store: ChunkStore | None, speech: float) -> None:
        self.prepared, self.store, self.speech = prepared, store, speech
        self.made: list[TranscriptSegment] = list(prepared.done.segments if prepared.done else ())

    def keep(self, covered: float | None) -> None:
        if self.store is not None:
            prepared = self.prepared
            record = ChunkRecord(tuple(self.made), prepared.loud_seconds, self.speech, covered)
            self.store.put(prepared.chunk.offset, prepared.chunk.seconds, record)


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
        self._silence = silence or SilenceOptions()
        if not self._silence.vad:  # Whisper reads whole chunks, one after another
            plan = replace(plan, workers=1, cpu_threads=plan.cpu_threads * plan.workers)
        self._plan = plan
        self._language = language
        self._download_root = download_root
        self._model: Any = None
        self._decoder: WhisperDecoder | None = None
        self._adapt = _Adaptation(plan, self._silence)
        options = {**asdict(plan), **asdict(self._silence), "speech_windows": "packed"}
        self.stats = TranscriptionStats("local_whisper", model, options)

    def _load(self) -> WhisperDecoder:
        if self._decoder is None:
            self._model = self._holder.get(self._model_name, self._plan, self._download_root)
            self._decoder = WhisperDecoder(self._model, self._plan.beam_size, self._language)
        return self._decoder

    def _prepare(self, chunk: AudioChunk) -> _Prepared:
        """Loudness and speech windows: made in the decoding thread, so that the next
        chunk's VAD overlaps the model's work on this one."""
        silence, adapt = self._silence, self._adapt
        done = self._store.get(chunk.offset, chunk.seconds) if self._store else None
        if done is not None and done.covered is None:  # finished: no VAD, no model
            adapt.observe(chunk.seconds, done.loud_seconds, done.speech_seconds)
            return _Prepared(chunk, done.loud_seconds, None, done)
        if not silence.vad:
            return _Prepared(chunk, chunk.seconds, None, done)
        loud = active_seconds(chunk.samples, silence.threshold_db, silence.min_silence_seconds)
        if loud < 0.5:  # nothing above the silence threshold: no VAD, no model
            adapt.observe(chunk.seconds, loud, 0.0)
            return _Prepared(chunk, loud, [], done)
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(
            threshold=adapt.vad_threshold, min_silence_duration_ms=160, max_speech_duration_s=30
        )
        # Silero's memory grows with its input; a minute at a time keeps it flat, and
        # spans cut at a slice edge meet again in one window of ``speech_windows``.
        step = VAD_SLICE_SECONDS * SAMPLE_RATE
        spans = [
            {"start": span["start"] + base, "end": span["end"] + base}
            for base in range(0, len(chunk.samples), step)
            for span in get_speech_timestamps(chunk.samples[base : base + step], options)
        ]
        windows = speech_windows(spans)
        covered = done.covered if done is not None and done.covered else 0.0
        # windows an earlier run finished are not redone
        todo = tuple(window for window in windows if window.end > covered + 1e-6)
        prepared = _Prepared(chunk, loud, windows, done, todo)
        adapt.observe(chunk.seconds, loud, prepared.speech_seconds)
        return prepared

    @staticmethod
    def _packed(chunk: AudioChunk, window: SpeechWindow) -> npt.NDArray[np.float32]:
        return np.concatenate([chunk.samples[start:end] for start, end in window.spans])

    def _batches(self, prepared: _Prepared) -> Iterator[_Batch]:
        size = max(self._plan.batch_size, 1)
        todo = prepared.todo
        groups = [todo[start : start + size] for start in range(0, len(todo), size)] or [()]
        for number, windows in enumerate(groups):
            yield _Batch(prepared, windows, number == 0, number == len(groups) - 1)

    def _decode(self, batch: _Batch) -> list[WindowText]:
        """A batch of windows through the model, features and all (in a worker thread)."""
        if not batch.windows:
            return []
        decoder, chunk = self._load(), batch.prepared.chunk
        return decoder.decode([decoder.features(self._packed(chunk, w)) for w in batch.windows])

    def segments(
        self, audio: Path, stop: threading.Event, chunks: ChunkStore | None = None
    ) -> Iterator[TranscriptSegment]:
        """The blocking generator behind ``transcribe``: usable without an event loop."""
        self._store = chunks
        self._load()
        audio_chunks = iter_chunks(
            decode_stream(audio), lambda: self._adapt.seconds, self._plan.search_seconds
        )
        clock = MonotonicClock()
        prepared = prefetch(map(self._prepare, audio_chunks), stop)
        batches = (batch for chunk in prepared for batch in self._batches(chunk))
        workers = self._plan.workers
        decoded = in_order(batches, self._decode, workers, ahead=2 * workers)
        progress: _Progress | None = None
        with closing(prepared), closing(decoded):
            for batch, heard in decoded:
                if stop.is_set():
                    return  # the windows not kept yet are redone next time
                made: list[TranscriptSegment] = []
                if batch.first:
                    progress = self._started(batch.prepared)
                    made = list(progress.made)
                    if batch.prepared.windows is None and progress.store is self._store:
                        # VAD off: Whisper reads the whole chunk, and each segment goes out
                        # as it is heard, so Ctrl-C stops after a segment, not a chunk.
                        for segment in self._whole(batch.prepared.chunk):
                            progress.made.append(segment)
                            yield clock(segment)
                            if stop.is_set():
                                return
                assert progress is not None
                for window, text in zip(batch.windows, heard, strict=True):
                    found = list(self._window_segments(batch.prepared.chunk, window, text))
                    progress.made.extend(found)
                    progress.keep(window.end)
                    made.extend(found)
                if batch.last:
                    progress.keep(None)
                for segment in made:
                    yield clock(segment)
                    if stop.is_set():
                        return

    def _started(self, prepared: _Prepared) -> _Progress:
        """Counts a chunk in and starts its progress, whose ``made`` holds what an earlier
        run finished of it (all of it, for a finished chunk: then nothing is kept)."""
        chunk, stats, done = prepared.chunk, self.stats, prepared.done
        stats.chunks += 1
        stats.audio_seconds += chunk.seconds
        if done is not None and done.covered is None:
            stats.resumed_chunks += 1
            stats.speech_seconds += done.speech_seconds
            return _Progress(prepared, None, done.speech_seconds)
        if prepared.windows is None:  # VAD off: every second through the model
            stats.speech_seconds += chunk.seconds
            return _Progress(prepared, self._store, chunk.seconds)  # read as it goes
        speech = prepared.speech_seconds
        stats.speech_seconds += speech
        if not prepared.windows:
            stats.skipped_chunks += 1
            logger.debug("chunk %d at %.1f s has no speech; skipped", chunk.index, chunk.offset)
        else:
            logger.debug(
                "chunk %d: %.1f s at %.1f s, %.1f s of speech in %d windows",
                chunk.index,
                chunk.seconds,
                chunk.offset,
                speech,
                len(prepared.windows),
            )
        if done is not None and done.segments:
            stats.resumed_chunks += 1
        return _Progress(prepared, self._store, speech)

    def _whole(self, chunk: AudioChunk) -> Iterator[TranscriptSegment]:
        """The original behaviour, without VAD: the chunk as Whisper itself reads it."""
        segments, info = self._model.transcribe(
            chunk.samples,
            language=self._language,
            vad_filter=False,
            beam_size=self._plan.beam_size,
        )
        self.stats.language = info.language
        for segment in segments:
            piece = (segment.start, segment.end, segment.text.strip())
            yield from self._kept(chunk, segment.text, segment, [piece])

    def _window_segments(
        self, chunk: AudioChunk, window: SpeechWindow, heard: WindowText
    ) -> Iterator[TranscriptSegment]:
        """A window's text, cut again where the speaker paused, in the audio's time."""
        self.stats.language = self._load().language
        in_audio = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in window.spans]
        text = heard.text.strip()
        pieces = split_at_pauses(text, 0.0, window.speech_seconds, in_audio)
        if not pieces:
            return
        if heard.compression_ratio > LOOP_COMPRESSION:
            # A batch decodes once, at temperature 0, with no fallback: a repetition loop
            # there would cost the whole window. Decode the window again the way Whisper
            # does, with rising temperatures.
            self.stats.fallback_windows += 1
            yield from self._fallback(chunk, pieces[0][0], pieces[-1][1])
        else:
            yield from self._kept(chunk, text, heard, pieces)

    def _kept(
        self, chunk: AudioChunk, text: str, scores: Any, pieces: list[tuple[float, float, str]]
    ) -> Iterator[TranscriptSegment]:
        """``pieces`` of ``text`` (seconds into ``chunk``) unless Whisper made it up."""
        if is_hallucination(
            text.strip(), scores.no_speech_prob, scores.avg_logprob, scores.compression_ratio
        ):
            self.stats.dropped_segments += 1
            return
        for start, end, words in pieces:
            start = chunk.offset + max(start, 0.0)
            end = min(chunk.offset + end, chunk.offset + chunk.seconds)
            yield TranscriptSegment(round(start, 3), round(max(end, start), 3), words)

    def _fallback(self, chunk: AudioChunk, start: float, end: float) -> Iterator[TranscriptSegment]:
        window = chunk.samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        segments, _ = self._model.transcribe(
            window,
            language=self._language,
            vad_filter=False,
            beam_size=self._plan.beam_size,
            temperature=FALLBACK_TEMPERATURES,
            compression_ratio_threshold=LOOP_COMPRESSION,
            condition_on_previous_text=False,
        )
        for segment in segments:
            piece = (start + segment.start, start + segment.end, segment.text.strip())
            yield from self._kept(chunk, segment.text, segment, [piece])

    async def transcribe(
        self, audio: Path, chunks: ChunkStore | None = None
    ) -> AsyncIterator[TranscriptSegment]:
        stop = threading.Event()
        try:
            async for segment in stream_in_thread(
                self.segments(audio, stop, chunks), stop, "yttl-whisper"
            ):
                yield segment
        except YttlError:
            raise
        except Exception as exc:
            raise ProcessingError(f"transcription failed: {type(exc).__name__}: {exc}") from exc
