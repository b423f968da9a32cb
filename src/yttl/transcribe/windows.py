"""What the model hears: speech packed into windows, and what it made up.

Whisper reads 30 s at a time and costs the same for 3 s as for 30 s, so the VAD's speech
spans are laid end to end into full windows; the text of a window is then cut again where
the speaker paused, so a transcript segment never spans a long silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yttl.transcribe.audio import SAMPLE_RATE

__all__ = ["LOOP_COMPRESSION", "SpeechWindow", "is_hallucination", "speech_windows",
           "split_at_pauses"]  # fmt: skip

LOOP_COMPRESSION = 2.4  # Whisper's own threshold for a repetition loop
_NOT_WORDS = re.compile(r"^[\W_]*(\[[^\]]*\]|\([^)]*\)|♪+)?[\W_]*$")


def is_hallucination(text: str, no_speech_prob: float, avg_logprob: float,
                     compression_ratio: float) -> bool:  # fmt: skip
    """Whisper's own rule for silence plus repetition loops and music captions."""
    if no_speech_prob > 0.6 and avg_logprob < -1.0:
        return True
    if compression_ratio > LOOP_COMPRESSION:
        return True
    return bool(_NOT_WORDS.match(text.strip()))


@dataclass(frozen=True)
class SpeechWindow:
    """Speech for one pass of the model: VAD spans (samples in the chunk) laid end to end,
    the pauses between them left out, as faster-whisper's batched pipeline does."""

    spans: tuple[tuple[int, int], ...]

    @property
    def start(self) -> float:
        return self.spans[0][0] / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.spans[-1][1] / SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        return sum(end - start for start, end in self.spans) / SAMPLE_RATE


def speech_windows(
    spans: list[dict[str, int]], max_seconds: float = 30.0, max_extent: float = 60.0
) -> list[SpeechWindow]:
    """Pack VAD speech spans (in samples) into windows of at most ``max_seconds`` of speech
    for Whisper's 30 s context, as faster-whisper's batched pipeline does: the encoder costs
    the same for 3 s as for 30 s, and the decoder reads more of each sentence around a word.
    A window covers at most ``max_extent`` seconds of the audio, so that what is said after
    a long silence is never dated before it."""
    limit, extent = int(max_seconds * SAMPLE_RATE), max_extent * SAMPLE_RATE
    pieces = [
        (start, min(start + limit, span["end"]))
        for span in spans
        for start in range(span["start"], span["end"], limit)
    ]
    windows: list[list[tuple[int, int]]] = []
    filled = limit
    for start, end in pieces:
        if filled + end - start > limit or end - windows[-1][0][0] > extent:
            windows.append([])
            filled = 0
        windows[-1].append((start, end))
        filled += end - start
    return [SpeechWindow(tuple(window)) for window in windows]


def split_at_pauses(
    text: str, start: float, end: float, spans: list[tuple[float, float]], min_pause: float = 1.0
) -> list[tuple[float, float, str]]:
    """Cut a window's text where the speaker paused, as ``(start, end, text)`` pieces.

    ``spans`` are where the speech given to the model lies in the audio, in the order it
    was laid end to end; ``start`` and ``end`` are the text's place in that packed time.
    Without word times,
    the words go to each stretch of speech in proportion to its length (characters track
    speaking time); what matters is that a cue never spans a long pause."""
    runs: list[list[float]] = []  # [audio start, audio end, packed seconds]
    packed = 0.0
    for span_start, span_end in spans:
        low, high = max(start, packed), min(end, packed + span_end - span_start)
        if high > low:
            piece = [span_start + low - packed, span_start + high - packed, high - low]
            if runs and piece[0] - runs[-1][1] < min_pause:
                runs[-1][1:] = [piece[1], runs[-1][2] + piece[2]]
            else:
                runs.append(piece)
        packed += span_end - span_start
    words = text.split()
    if len(runs) < 2 or len(words) < 2:
        return [(runs[0][0], runs[-1][1], text)] if runs else []
    total, chars = sum(run[2] for run in runs), sum(len(word) + 1 for word in words)
    pieces, taken, done = [], 0, 0.0
    for number, (run_start, run_end, seconds) in enumerate(runs):
        done += seconds / total
        last = number == len(runs) - 1
        until, count = taken, sum(len(word) + 1 for word in words[:taken])
        while until < len(words) and (last or count + len(words[until]) / 2 < done * chars):
            count += len(words[until]) + 1
            until += 1
        if until > taken:
            pieces.append((run_start, run_end, " ".join(words[taken:until])))
        taken = until
    return pieces
