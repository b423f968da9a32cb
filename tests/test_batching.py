"""Speech windows in batches, several batches at once (issue 31): the same text as one
window at a time, segments in time order whichever batch finishes first, and no more
windows held at once on a long input than on a short one. Counts and events, no clocks."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.speech import ESPEAK, paragraphs, read_aloud, write_opus
from tests.support.whisper import MODEL_DIR
from yttl.models import TranscriptSegment
from yttl.transcribe.batching import WindowText, in_order
from yttl.transcribe.chunking import ChunkOptimizer, ChunkPlan, Hardware
from yttl.transcribe.local import FasterWhisperTranscriber, WhisperModelHolder

LICENCE = Path("/usr/share/common-licenses/Apache-2.0")
TWO_CORES = Hardware(total_mb=8192, available_mb=6144, cores=2)
WAIT = 120.0  # only bounds a failure: a passing run never waits this long


class _Recorder:
    """``run`` for ``in_order``: doubles its items, counting batches and calls at once."""

    def __init__(self, hold_first: bool = False) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[int]] = []
        self.active = self.most_active = 0
        self.finished = 0
        self.later_finished = threading.Event()
        self.hold_first = hold_first

    def __call__(self, batch: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(batch)
            first = len(self.batches) == 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        if first and self.hold_first:  # the first batch finishes after a later one
            assert self.later_finished.wait(WAIT)
        with self.lock:
            self.active -= 1
            self.finished += 1
            if not first:
                self.later_finished.set()
        return [item * 2 for item in batch]


def _odd(item: int) -> bool:
    return item % 2 == 1  # even items need no model


def test_results_come_in_order_in_full_batches_with_at_most_the_workers_at_once() -> None:
    recorder = _Recorder(hold_first=True)
    groups = [range(start, start + 5) for start in range(0, 40, 5)]
    out = list(in_order(groups, _odd, recorder, batch_size=4, workers=2))
    assert [item for item, _ in out] == list(range(40))
    assert all(result == (item * 2 if _odd(item) else None) for item, result in out)
    assert sorted(itertools.chain(*recorder.batches)) == list(range(1, 40, 2))
    assert all(len(batch) <= 4 for batch in recorder.batches)
    assert recorder.most_active == 2  # two at once, never more


def test_while_the_next_chunk_is_not_ready_a_part_batch_goes_and_its_results_come_out() -> None:
    """The first chunk's segments must not wait for the VAD of the second."""
    second_ready = threading.Event()

    def chunks() -> Iterator[list[int]]:
        yield [0, 1, 3, 5, 6]  # three windows: less than a batch
        assert second_ready.is_set(), "the next chunk was waited for before it was ready"
        yield [7, 8, 9]

    recorder = _Recorder()
    decoded = in_order(chunks(), _odd, recorder, 4, 2, ready=second_ready.is_set)
    out = []
    for item, result in decoded:
        out.append((item, result))
        if item == 6:  # all of the first chunk is out: now the second is there
            second_ready.set()
    assert [item for item, _ in out] == [0, 1, 3, 5, 6, 7, 8, 9]
    assert sorted(len(batch) for batch in recorder.batches[:2]) == [1, 2]  # two idle workers


def test_windows_held_at_once_do_not_grow_with_the_input() -> None:
    def held(count: int) -> int:
        """The most items taken from the input and not yet given out."""
        taken, most = 0, 0

        def source() -> Iterator[list[int]]:
            nonlocal taken
            for start in range(0, count, 5):
                taken += 5
                yield list(range(start, start + 5))

        decoded = in_order(source(), _odd, _Recorder(), batch_size=4, workers=2)
        for given, _ in enumerate(decoded, 1):
            most = max(most, taken - given)
        return most

    assert held(2000) == held(100) <= 2 * 2 * 4 * 2


def test_closing_early_waits_for_the_batches_in_flight() -> None:
    recorder = _Recorder()
    groups = [[item] for item in range(1, 200, 2)]
    decoded = in_order(groups, lambda item: True, recorder, batch_size=2, workers=2)
    assert next(decoded) == (1, 2)
    decoded.close()
    assert recorder.active == 0 and recorder.finished == len(recorder.batches) < 50


@pytest.fixture(scope="module")
def made_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About two minutes of the Apache licence read by espeak-ng: five windows or so."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    if not LICENCE.is_file():
        pytest.skip(f"{LICENCE} is not on this machine (Debian's base-files)")
    text: list[list[str]] = []
    for sentences in paragraphs([str(LICENCE)]):
        text.append(sentences[: 16 - sum(map(len, text))])
        if sum(map(len, text)) >= 16:
            break
    path = tmp_path_factory.mktemp("speech") / "licence.opus"
    write_opus(read_aloud(text, (0.3, 0.8, 2.5), seed=3), path)
    return path


class _Watched(FasterWhisperTranscriber):
    """The real transcriber, its first batch held until a later one is done: the batches
    finish out of order if, and only if, two run at once."""

    def __init__(self, plan: ChunkPlan, holder: WhisperModelHolder) -> None:
        super().__init__(MODEL_DIR, plan, holder=holder)
        self.lock = threading.Lock()
        self.batches = self.active = self.most_active = 0
        self.later_done = threading.Event()

    def _decode(self, windows: list[Any]) -> list[WindowText]:
        with self.lock:
            self.batches += 1
            first = self.batches == 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if first:
                assert self.later_done.wait(WAIT), "no other batch ran beside the first"
            return super()._decode(windows)
        finally:
            with self.lock:
                self.active -= 1
            if not first:
                self.later_done.set()


def _segments(transcriber: FasterWhisperTranscriber, audio: Path) -> list[TranscriptSegment]:
    return list(transcriber.segments(audio, threading.Event()))


def test_batches_at_once_give_the_text_of_one_window_at_a_time_in_time_order(
    made_speech: Path,
) -> None:
    defaults = ChunkOptimizer(TWO_CORES).plan("adaptive", model=MODEL_DIR)
    assert (defaults.workers, defaults.cpu_threads) == (2, 1)  # two batches, a core each
    holder = WhisperModelHolder()
    alone = dataclasses.replace(defaults, batch_size=1, workers=1, cpu_threads=2)
    one_at_a_time = _segments(FasterWhisperTranscriber(MODEL_DIR, alone, holder=holder),
                              made_speech)  # fmt: skip
    watched = _Watched(dataclasses.replace(defaults, batch_size=2), holder)
    batched = _segments(watched, made_speech)
    assert watched.batches >= 3
    assert watched.most_active == 2  # the first was held while another ran
    assert batched == one_at_a_time and len(batched) >= 3
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(batched))
    assert watched.stats.options["workers"] == 2 and watched.stats.options["batch_size"] == 2
