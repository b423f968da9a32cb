"""The transcription seam: audio in, time-ordered segments out, as they are produced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from yttl.models import TranscriptSegment

__all__ = ["ChunkRecord", "ChunkStore", "Transcriber", "TranscriptionStats"]


@dataclass
class TranscriptionStats:
    """What a transcription did, and with which settings (filled in as it runs)."""

    provider: str
    model: str
    options: dict[str, object] = field(default_factory=dict)
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    chunks: int = 0
    skipped_chunks: int = 0
    dropped_segments: int = 0
    resumed_chunks: int = 0  # taken from an earlier, unfinished run
    fallback_windows: int = 0  # windows decoded again after a repetition loop
    language: str | None = None

    @property
    def silence_skipped_seconds(self) -> float:
        return max(self.audio_seconds - self.speech_seconds, 0.0)


@dataclass(frozen=True)
class ChunkRecord:
    """A finished chunk of a transcription: its segments (in the audio's time) and what
    the adaptive chunking learnt from it."""

    segments: tuple[TranscriptSegment, ...]
    loud_seconds: float
    speech_seconds: float
    covered: float | None = None  # unfinished: its speech windows are done up to here


class ChunkStore(Protocol):
    """Where finished chunks are kept as they finish, so that a rerun after Ctrl-C or a
    failure transcribes only what is missing. Bound to one audio and one set of options
    by whoever makes it; chunks are known by their place in the audio."""

    def get(self, offset: float, seconds: float) -> ChunkRecord | None: ...

    def put(self, offset: float, seconds: float, record: ChunkRecord) -> None: ...


class Transcriber(Protocol):
    name: str
    stats: TranscriptionStats

    def transcribe(
        self, audio: Path, chunks: ChunkStore | None = None
    ) -> AsyncIterator[TranscriptSegment]:
        """Segments in time order, yielded while later audio is still being worked on;
        chunks found in ``chunks`` are not transcribed again, new ones are put there."""
        ...


class MonotonicClock:
    """Keeps segment times monotonic across chunk boundaries (a segment never starts
    before the previous one ended)."""

    def __init__(self) -> None:
        self.last_end = 0.0

    def __call__(self, segment: TranscriptSegment) -> TranscriptSegment:
        start = max(segment.start, self.last_end)
        self.last_end = max(segment.end, start)
        return TranscriptSegment(start, self.last_end, segment.text)
