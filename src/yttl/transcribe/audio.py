"""Audio in and out: streamed decoding, chunks cut in silences, compact Opus encoding.

A long input is never held whole: PyAV decodes and resamples frame by frame, and
``iter_chunks`` keeps at most one chunk (plus the search window) in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from yttl.errors import InputError

__all__ = [
    "SAMPLE_RATE",
    "AudioChunk",
    "EncodedChunk",
    "active_seconds",
    "decode_stream",
    "encode_opus",
    "iter_chunks",
    "iter_encoded_chunks",
    "quietest_point",
]

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.02
Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioChunk:
    """``samples`` (mono float32 at 16 kHz) that start ``offset`` seconds into the input."""

    index: int
    offset: float
    samples: Samples

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.offset + self.seconds


def _grouped_frames(frames: Iterator[Any], samples: int) -> Iterator[Any]:
    """Frames joined in a FIFO into frames of about ``samples``, then ``None`` at the end."""
    import av

    fifo = av.AudioFifo()
    for frame in frames:
        frame.pts = None  # the FIFO checks continuity, which real files do not always keep
        fifo.write(frame)
        if fifo.samples >= samples:
            yield fifo.read()
    if fifo.samples:
        yield fifo.read()
    yield None  # flushes the resampler


def decode_stream(path: Path | str, block_seconds: float = 30.0) -> Iterator[Samples]:
    """Mono 16 kHz float32 blocks of about ``block_seconds``, decoded as they are needed.

    Frames are grouped before resampling: one resampler call per block is much cheaper
    than one per 20 ms frame."""
    import av

    block = int(block_seconds * SAMPLE_RATE)
    pending: list[Samples] = []
    size = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            per_group = int(block_seconds * (stream.rate or SAMPLE_RATE))
            for grouped in _grouped_frames(container.decode(stream), per_group):
                for out in resampler.resample(grouped):
                    pending.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
                    size += out.samples
                while size >= block:
                    joined = np.concatenate(pending)
                    yield joined[:block]
                    pending, size = [joined[block:]], len(joined) - block
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot decode the audio of {path}: {exc}") from exc
    if size:
        yield np.concatenate(pending)


def _frame_db(samples: Samples) -> npt.NDArray[np.float32]:
    """Loudness of each 20 ms frame in dBFS."""
    frame = int(FRAME_SECONDS * SAMPLE_RATE)
    usable = len(samples) // frame * frame
    if usable == 0:
        return np.full(1, -120.0, np.float32)
    frames = samples[:usable].reshape(-1, frame)
    power = np.einsum("ij,ij->i", frames, frames) / frame
    db: npt.NDArray[np.float32] = 10 * np.log10(np.maximum(power, 1e-12))
    return db


def active_seconds(samples: Samples, threshold_db: float, min_silence: float) -> float:
    """Seconds that are not part of a silence (below ``threshold_db``) of ``min_silence``+."""
    quiet = _frame_db(samples) < threshold_db
    min_frames = max(int(min_silence / FRAME_SECONDS), 1)
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = ends - starts
    silent = int(runs[runs >= min_frames].sum())
    return float((len(quiet) - silent) * FRAME_SECONDS)


def quietest_point(samples: Samples, window_seconds: float = 0.4) -> int:
    """The sample index at the centre of the quietest window: a safe place to cut."""
    db = _frame_db(samples)
    width = max(int(window_seconds / FRAME_SECONDS), 1)
    if len(db) <= width:
        return len(samples)
    smoothed = np.convolve(db, np.ones(width) / width, mode="valid")
    best = int(np.argmin(smoothed)) + width // 2
    return best * int(FRAME_SECONDS * SAMPLE_RATE)


def iter_chunks(
    blocks: Iterator[Samples],
    chunk_seconds: float | Callable[[], float],
    search_seconds: float = 30.0,
) -> Iterator[AudioChunk]:
    """Chunks of about ``chunk_seconds``, each ending in the quietest moment of the
    ``search_seconds`` around its nominal end so that no word is cut; offsets are exact
    sample counts. ``chunk_seconds`` may be a callable, read before each chunk, so the
    consumer can adapt the size to what it has seen."""
    size = chunk_seconds if callable(chunk_seconds) else lambda: chunk_seconds
    pending: list[Samples] = []  # blocks not yet cut, joined only when a cut is due
    held = consumed = index = 0
    for block in blocks:
        pending.append(block)
        held += len(block)
        while True:
            target = int(size() * SAMPLE_RATE)
            search = min(int(search_seconds * SAMPLE_RATE), target // 2)
            if held < target + search:
                break
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            cut = target - search + quietest_point(joined[target - search : target + search])
            # Views, not copies: the chunk and the rest share ``joined``, which goes as
            # soon as both have, so a chunk costs its own samples and the search window.
            yield AudioChunk(index, consumed / SAMPLE_RATE, joined[:cut])
            consumed += cut
            pending, held = [joined[cut:]], len(joined) - cut
            index += 1
    if held:
        yield AudioChunk(index, consumed / SAMPLE_RATE, np.concatenate(pending))


def encode_opus(samples: Samples, bitrate: int = 24_000) -> bytes:
    """Mono 16 kHz Opus in an Ogg container: about 3 KB a second of speech."""
    writer = _OggOpusWriter(bitrate)
    writer.write(samples)
    return writer.close()


@dataclass(frozen=True)
class EncodedChunk:
    """An Opus/Ogg file of ``seconds`` of audio starting ``offset`` seconds in."""

    index: int
    offset: float
    seconds: float
    data: bytes
    active_seconds: float


class _OggOpusWriter:
    def __init__(self, bitrate: int) -> None:
        import av

        self._buffer = io.BytesIO()
        self._container = av.open(self._buffer, "w", format="ogg")
        self._stream = self._container.add_stream("libopus", rate=SAMPLE_RATE)
        self._stream.layout = "mono"
        self._stream.bit_rate = bitrate
        # speech at a middling effort: a third of the default's time for the same size
        self._stream.codec_context.options = {"application": "voip", "compression_level": "5"}
        self.samples = 0

    def write(self, samples: Samples) -> None:
        import av

        for start in range(0, len(samples), SAMPLE_RATE):
            piece = np.ascontiguousarray(samples[start : start + SAMPLE_RATE], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
            frame.rate = SAMPLE_RATE
            frame.pts = self.samples
            self.samples += len(piece)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)

    def close(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._buffer.getvalue()


def iter_encoded_chunks(
    blocks: Iterator[Samples],
    chunk_seconds: float,
    *,
    bitrate: int = 24_000,
    search_seconds: float = 30.0,
    threshold_db: float = -40.0,
    min_silence: float = 2.0,
) -> Iterator[EncodedChunk]:
    """Like ``iter_chunks`` but encoding as it goes, so a two-hour upload never exists as
    raw samples: only the search window is buffered."""
    search = int(min(search_seconds, chunk_seconds / 4) * SAMPLE_RATE)
    target = int(chunk_seconds * SAMPLE_RATE)
    writer = _OggOpusWriter(bitrate)
    pending = np.zeros(0, np.float32)
    offset, index, active = 0, 0, 0.0

    def flush(samples: Samples) -> None:
        nonlocal active
        if len(samples):
            active += active_seconds(samples, threshold_db, min_silence)
            writer.write(samples)

    def finish() -> EncodedChunk:
        nonlocal writer, offset, index, active
        seconds = writer.samples / SAMPLE_RATE
        chunk = EncodedChunk(index, offset / SAMPLE_RATE, seconds, writer.close(), active)
        offset += writer.samples
        index += 1
        active = 0.0
        writer = _OggOpusWriter(bitrate)
        return chunk

    for block in blocks:
        pending = np.concatenate([pending, block]) if len(pending) else block
        while writer.samples + len(pending) >= target + search:
            room = target - writer.samples  # samples until the nominal end
            if room > search:
                flush(pending[: room - search])
                pending = pending[room - search :]
                continue
            window = pending[: 2 * search]
            cut = quietest_point(window)
            flush(pending[:cut])
            pending = pending[cut:]
            yield finish()
        if len(pending) > 2 * search:  # keep only the window that may hold the next cut
            keep = min(len(pending), max(2 * search, target - writer.samples + search))
            flush(pending[: len(pending) - keep])
            pending = pending[len(pending) - keep :]
    flush(pending)
    if writer.samples:
        yield finish()
