"""Speech nobody tuned on: Debian's copies of two licences read by espeak-ng.

The text is the Apache License 2.0 and the Artistic License as ``base-files`` ships them
in ``/usr/share/common-licenses`` (about 2,500 words); five voices take turns by
paragraph at speeds from 140 to 185 words a minute; between sentences come pauses of
0.2 to 20 s drawn with a fixed seed, and a faint noise floor runs under all of it, so
that silence is not digital zero. Built once into a cache folder and reused.

    python -m benchmarks.unseen_speech [DIR [continuous]]   # writes unseen-*.opus and .txt
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

SOURCES = ("/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/Artistic")
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland")
PAUSES = (0.2, 0.4, 0.7, 1.0, 1.5, 2.5, 4.0, 7.0, 12.0, 20.0)
# ``continuous`` (issue 24): speech as a talk has it, sentence after sentence with short
# breaths and no long silence, from another text (the GNU LGPL 3 and the MPL 2.0)
CONTINUOUS_SOURCES = ("/usr/share/common-licenses/LGPL-3", "/usr/share/common-licenses/MPL-2.0")
CONTINUOUS_PAUSES = (0.1, 0.2, 0.3, 0.5, 0.8)
RATE = 16_000
SEED = 20261128


def paragraphs(sources: tuple[str, ...] = SOURCES) -> list[list[str]]:
    """The licences' paragraphs as sentences, without URLs, headings or list markers."""
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


def _say(espeak: str, text: str, voice: str, speed: int, folder: Path) -> np.ndarray:
    wav = folder / "say.wav"
    subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    pieces: list[np.ndarray] = []
    with av.open(str(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
    return np.concatenate(pieces)


def _write_opus(samples: np.ndarray, path: Path) -> None:
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


def build(folder: Path, kind: str = "licences") -> tuple[Path, str]:
    """``(audio, reference text)``, made in ``folder`` unless already there; ``kind``:
    ``licences`` (long pauses) or ``continuous``."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    continuous = kind == "continuous"
    text = paragraphs(CONTINUOUS_SOURCES if continuous else SOURCES)
    pauses = CONTINUOUS_PAUSES if continuous else PAUSES
    tag = hashlib.sha256(repr((text, VOICES, pauses, SEED)).encode()).hexdigest()[:12]
    audio, reference = folder / f"unseen-{tag}.opus", folder / f"unseen-{tag}.txt"
    if audio.exists() and reference.exists():
        return audio, reference.read_text()
    folder.mkdir(parents=True, exist_ok=True)
    chosen = random.Random(SEED)
    pieces: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, sentences in enumerate(text):
            voice, speed = VOICES[number % len(VOICES)], chosen.randrange(140, 186, 5)
            for sentence in sentences:
                pieces.append(_say(espeak, sentence, voice, speed, Path(tmp)))
                pieces.append(np.zeros(int(chosen.choice(pauses) * RATE), dtype=np.float32))
    speech = np.concatenate(pieces)
    noise = np.random.default_rng(SEED).normal(0.0, 10 ** (-55 / 20), len(speech))
    _write_opus((speech + noise).astype(np.float32), audio)
    reference.write_text("\n".join(" ".join(sentences) for sentences in text) + "\n")
    return audio, reference.read_text()


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "yttl-bench"
    made, said = build(where, sys.argv[2] if len(sys.argv) > 2 else "licences")
    print(made, f"{len(said.split())} words")
