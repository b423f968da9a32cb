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
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from tests.support.speech import (
    ESPEAK,
    RATE,
    VOICES,
    add_noise,
    paragraphs,
    read_aloud,
    write_opus,
)

SOURCES = ("/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/Artistic")
PAUSES = (0.2, 0.4, 0.7, 1.0, 1.5, 2.5, 4.0, 7.0, 12.0, 20.0)
# ``continuous`` (issue 24): speech as a talk has it, sentence after sentence with short
# breaths and no long silence, from another text (the GNU LGPL 3 and the MPL 2.0)
CONTINUOUS_SOURCES = ("/usr/share/common-licenses/LGPL-3", "/usr/share/common-licenses/MPL-2.0")
CONTINUOUS_PAUSES = (0.1, 0.2, 0.3, 0.5, 0.8)
# ``noisy`` (issue 24): the licences under a white noise floor at -35 dBFS, as a fan or a
# cheap microphone gives it: where a narrow beam loses words that a wide one keeps
NOISE_DBFS = -35.0
SEED = 20261128


def _first(text: list[list[str]], sentences: int | None) -> list[list[str]]:
    """The paragraphs that hold the first ``sentences`` sentences (all if ``None``)."""
    if sentences is None:
        return text
    kept: list[list[str]] = []
    for paragraph in text:
        kept.append(paragraph[: sentences - sum(map(len, kept))])
        if sum(map(len, kept)) >= sentences:
            break
    return kept


def build(folder: Path, kind: str = "licences", sentences: int | None = None) -> tuple[Path, str]:
    """``(audio, reference text)``, made in ``folder`` unless already there; ``kind``:
    ``licences`` (long pauses), ``continuous`` or ``noisy`` (the licences under noise);
    ``sentences``: only the first so many (a shorter file for a quicker benchmark)."""
    if kind == "noisy":
        return _noisy(folder, sentences)
    if ESPEAK is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    continuous = kind == "continuous"
    text = _first(paragraphs(CONTINUOUS_SOURCES if continuous else SOURCES), sentences)
    pauses = CONTINUOUS_PAUSES if continuous else PAUSES
    tag = hashlib.sha256(repr((text, VOICES, pauses, SEED)).encode()).hexdigest()[:12]
    audio, reference = folder / f"unseen-{tag}.opus", folder / f"unseen-{tag}.txt"
    if audio.exists() and reference.exists():
        return audio, reference.read_text()
    folder.mkdir(parents=True, exist_ok=True)
    write_opus(add_noise(read_aloud(text, pauses, SEED), -55.0, SEED), audio)
    reference.write_text("\n".join(" ".join(sentences) for sentences in text) + "\n")
    return audio, reference.read_text()


def _noisy(folder: Path, sentences: int | None) -> tuple[Path, str]:
    clean, reference = build(folder, "licences", sentences)
    audio = clean.with_name(f"{clean.stem}-noise{-NOISE_DBFS:.0f}.opus")
    if not audio.exists():
        with av.open(str(clean)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            speech = np.concatenate(
                [
                    out.to_ndarray().reshape(-1)
                    for frame in container.decode(audio=0)
                    for out in resampler.resample(frame)
                ]
            )
        write_opus(add_noise(speech, NOISE_DBFS, SEED + 1), audio)
    return audio, reference


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "yttl-bench"
    made, said = build(where, sys.argv[2] if len(sys.argv) > 2 else "licences")
    print(made, f"{len(said.split())} words")
