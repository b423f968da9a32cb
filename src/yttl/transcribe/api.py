"""Speech-to-text through an OpenAI-compatible ``/audio/transcriptions`` endpoint.

Audio is encoded compactly (mono 16 kHz Opus in Ogg, about 3 KB a second) into as few
uploads as the provider's size limit allows, cut in silences. Uploads run concurrently
up to a bound; segments come back in time order with exact offsets.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import openai

from yttl.errors import BadResponseError
from yttl.models import TranscriptSegment
from yttl.openai_errors import translate_error
from yttl.scheduler import CallPolicy, direct_call
from yttl.transcribe.audio import EncodedChunk, decode_stream, iter_encoded_chunks
from yttl.transcribe.base import ChunkRecord, ChunkStore, MonotonicClock, TranscriptionStats
from yttl.transcribe.threads import stream_in_thread
from yttl.transcribe.windows import is_hallucination

__all__ = ["ApiTranscriber", "chunk_seconds_for_limit"]

logger = logging.getLogger(__name__)
DEFAULT_UPLOAD_LIMIT_MB = 25.0
MAX_UPLOAD_SECONDS = 4 * 3600.0


def chunk_seconds_for_limit(limit_bytes: float, bitrate: int) -> float:
    """The longest chunk whose encoding stays under ``limit_bytes`` with a 10 % margin
    for Ogg framing and bitrate overshoot."""
    bytes_per_second = bitrate / 8 * 1.1
    return max(30.0, min(limit_bytes * 0.9 / bytes_per_second, MAX_UPLOAD_SECONDS))


class ApiTranscriber:
    name = "api_whisper"

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        api_key: str,
        model: str,
        language: str | None = "en",
        upload_limit_mb: float = DEFAULT_UPLOAD_LIMIT_MB,
        max_concurrent: int = 4,
        bitrate: int = 24_000,
        timeout: float = 600.0,
        silence_threshold_db: float = -40.0,
        min_silence_seconds: float = 2.0,
        policy: CallPolicy = direct_call,
    ) -> None:
        self._policy = policy
        self._store: ChunkStore | None = None
        self._api_key = api_key
        self._provider = provider
        self._model = model
        self._language = language
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self._limit = max(1, max_concurrent)
        self._bitrate = bitrate
        self._threshold_db = silence_threshold_db
        self._min_silence = min_silence_seconds
        self.chunk_seconds = chunk_seconds_for_limit(upload_limit_mb * 2**20, bitrate)
        self.stats = TranscriptionStats(
            "api_whisper",
            model,
            {"provider": provider, "chunk_seconds": round(self.chunk_seconds, 1),
             "bitrate": bitrate, "max_concurrent": self._limit},
        )  # fmt: skip

    async def _upload(self, chunk: EncodedChunk) -> list[TranscriptSegment]:
        stats = self.stats
        stats.chunks += 1
        stats.audio_seconds += chunk.seconds
        stats.speech_seconds += chunk.active_seconds
        if chunk.active_seconds < 0.5:
            stats.skipped_chunks += 1
            return []
        done = self._store.get(chunk.offset, chunk.seconds) if self._store else None
        if done is not None:  # uploaded by an earlier run: not paid for twice
            stats.resumed_chunks += 1
            return list(done.segments)

        async def attempt() -> object:
            try:
                return await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(f"chunk-{chunk.index}.ogg", chunk.data, "audio/ogg"),
                    response_format="verbose_json",
                    timestamp_granularities=["segment"],
                    language=self._language or openai.omit,
                )
            except openai.OpenAIError as exc:
                raise translate_error(exc, self._provider, self._model, self._api_key) from exc

        # through the run's scheduler: the same slots, pacing, retries and breaker as chat
        response = await self._policy(f"audio chunk {chunk.index}", attempt)
        segments = getattr(response, "segments", None)
        if segments is None:
            raise BadResponseError(f"{self._provider}: the transcription has no segments")
        stats.language = getattr(response, "language", None) or stats.language
        result = []
        for segment in segments:
            text = str(segment.text).strip()
            if is_hallucination(text, getattr(segment, "no_speech_prob", 0.0) or 0.0,
                                getattr(segment, "avg_logprob", 0.0) or 0.0,
                                getattr(segment, "compression_ratio", 0.0) or 0.0):  # fmt: skip
                stats.dropped_segments += 1
                continue
            start = chunk.offset + max(float(segment.start), 0.0)
            end = chunk.offset + min(max(float(segment.end), float(segment.start)), chunk.seconds)
            result.append(TranscriptSegment(round(start, 3), round(end, 3), text))
        if self._store is not None:
            record = ChunkRecord(tuple(result), chunk.seconds, chunk.active_seconds)
            self._store.put(chunk.offset, chunk.seconds, record)
        logger.debug("uploaded chunk %d (%.0f s, %d bytes): %d segments", chunk.index,
                     chunk.seconds, len(chunk.data), len(result))  # fmt: skip
        return result

    async def transcribe(
        self, audio: Path, chunks: ChunkStore | None = None
    ) -> AsyncIterator[TranscriptSegment]:
        self._store = chunks
        stop = threading.Event()
        encoded = iter_encoded_chunks(
            decode_stream(audio), self.chunk_seconds, bitrate=self._bitrate,
            threshold_db=self._threshold_db, min_silence=self._min_silence,
        )  # fmt: skip
        pending: collections.deque[asyncio.Task[list[TranscriptSegment]]] = collections.deque()
        clock = MonotonicClock()
        try:
            async for chunk in stream_in_thread(encoded, stop, "yttl-encode"):
                pending.append(asyncio.create_task(self._upload(chunk)))
                # In order, and no more than the bound in flight (which also bounds memory).
                while pending and (len(pending) >= self._limit or pending[0].done()):
                    for segment in await pending.popleft():
                        yield clock(segment)
            while pending:
                for segment in await pending.popleft():
                    yield clock(segment)
        finally:
            stop.set()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._client.close()
