"""Audio in and out: streamed decoding, chunks cut in silences, compact Opus encoding.

A long input is never held whole: PyAV decodes and resamples frame by frame, and
``iter_chunks`` keeps at most one chunk (plus the search window) in memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from yttl.errors import InputError

__all__ = [
    "SAMPLE_RATE",
    "AudioChunk",
    "active_seconds",
    "decode_stream",
    "encode_opus",
    "iter_chunks",
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


def decode_stream(path: Path | str, block_seconds: float = 30.0) -> Iterator[Samples]:
    """Mono 16 kHz float32 blocks of about ``block_seconds``, decoded as they are needed."""
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
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    size += out.samples
                if size >= block:
                    joined = np.concatenate(pending)
                    yield joined[:block]
                    pending, size = [joined[block:]], len(joined) - block
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot decode the audio of {path}: {exc}") from exc
    rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if len(rest):
        yield rest.astype(np.float32, copy=False)


def _frame_db(samples: Samples) -> npt.NDArray[np.float64]:
    """Loudness of each 20 ms frame in dBFS."""
    frame = int(FRAME_SECONDS * SAMPLE_RATE)
    usable = len(samples) // frame * frame
    if usable == 0:
        return np.full(1, -120.0)
    frames = samples[:usable].reshape(-1, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def active_seconds(samples: Samples, threshold_db: float, min_silence: float) -> float:
    """Seconds that are not part of a silence (below ``threshold_db``) of ``min_silence``+."""
    quiet = _frame_db(samples) < threshold_db
    min_frames = max(int(min_silence / FRAME_SECONDS), 1)
    silent = 0
    run = 0
    for is_quiet in quiet:
        run = run + 1 if is_quiet else 0
        if run == min_frames:
            silent += min_frames
        elif run > min_frames:
            silent += 1
    return (len(quiet) - silent) * FRAME_SECONDS


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
    blocks: Iterator[Samples], chunk_seconds: float, search_seconds: float = 30.0
) -> Iterator[AudioChunk]:
    """Chunks of about ``chunk_seconds``, each ending in the quietest moment of its last
    ``search_seconds`` so that no word is cut; offsets are exact sample counts."""
    target = int(chunk_seconds * SAMPLE_RATE)
    search = min(int(search_seconds * SAMPLE_RATE), target // 2)
    buffer = np.zeros(0, np.float32)
    consumed = 0
    index = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block]) if len(buffer) else block
        while len(buffer) >= target + search:
            cut = target - search + quietest_point(buffer[target - search : target + search])
            yield AudioChunk(index, consumed / SAMPLE_RATE, buffer[:cut].copy())
            consumed += cut
            buffer = buffer[cut:]
            index += 1
    if len(buffer):
        yield AudioChunk(index, consumed / SAMPLE_RATE, buffer)


def encode_opus(samples: Samples, bitrate: int = 24_000) -> bytes:
    """Mono 16 kHz Opus in an Ogg container: about 3 KB a second of speech."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        step = SAMPLE_RATE  # one second per frame keeps memory small
        for start in range(0, len(samples), step):
            piece = np.ascontiguousarray(samples[start : start + step], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
            frame.rate = SAMPLE_RATE
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()
