"""Speech made here: text read by espeak-ng in several voices, with pauses and a noise
floor, written as Opus. Shared by the accuracy tests and ``benchmarks/unseen_speech.py``.

The texts are the licences Debian's ``base-files`` keeps in ``/usr/share/common-licenses``:
prose nobody tuned on, on every Debian machine."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

__all__ = ["ESPEAK", "RATE", "VOICES", "add_noise", "paragraphs", "read_aloud", "say",
           "write_opus"]  # fmt: skip

ESPEAK = shutil.which("espeak-ng")
RATE = 16_000
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland")


def paragraphs(sources: Sequence[str]) -> list[list[str]]:
    """The texts' paragraphs as sentences, without URLs, headings or list markers."""
    found: list[list[str]] = []
    for source in sources:
        text = Path(source).read_text(encoding="utf-8")
        for block in re.split(r"\n\s*\n", text):
            words = " ".join(line for line in block.split("\n") if "http" not in line)
            words = re.sub(r"\((?:[a-z]|[ivx]+)\)|\b\d+(\.\d+)*\.(?=\s)", " ", words)  # (a), 4.2.
            words = re.sub(r"[\"_*]|-{2,}", " ", words)
            words = " ".join(words.split())
            if len(words.split()) < 6:  # headings and the like
                continue
            sentences = [s.strip() for s in re.split(r"(?<=[.;:!?])\s+", words) if s.strip()]
            found.append(sentences)
    return found


def say(text: str, voice: str, speed: int, folder: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng, as float32 samples at ``RATE``."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = folder / "say.wav"
    subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    pieces: list[np.ndarray] = []
    with av.open(str(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
    return np.concatenate(pieces)


def read_aloud(text: Sequence[Sequence[str]], pauses: Sequence[float], seed: int) -> np.ndarray:
    """Paragraphs of sentences read by the voices in turn (one a paragraph), at 140 to 185
    words a minute, with a pause drawn from ``pauses`` after every sentence."""
    chosen = random.Random(seed)
    pieces: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, sentences in enumerate(text):
            voice, speed = VOICES[number % len(VOICES)], chosen.randrange(140, 186, 5)
            for sentence in sentences:
                pieces.append(say(sentence, voice, speed, Path(tmp)))
                pieces.append(np.zeros(int(chosen.choice(pauses) * RATE), dtype=np.float32))
    return np.concatenate(pieces)


def add_noise(samples: np.ndarray, dbfs: float, seed: int) -> np.ndarray:
    """White noise at ``dbfs`` (RMS) under ``samples``, as a fan or a cheap microphone."""
    noise = np.random.default_rng(seed).normal(0.0, 10 ** (dbfs / 20), len(samples))
    return np.clip(samples + noise, -1.0, 1.0).astype(np.float32)


def write_opus(samples: np.ndarray, path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        for start in range(0, len(samples), 10 * RATE):
            block = np.ascontiguousarray(samples[None, start : start + 10 * RATE])
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.rate, frame.pts = RATE, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
