"""Speech windows in small batches, several batches at once (issue 31): the same text as
one window at a time, segments in time order whichever batch finishes first, a free
worker never waiting on a busy one, and no more windows held at once on a long input
than on a short one. Counts and events, no clocks."""

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
from yttl.errors import InputError
from yttl.models import TranscriptSegment
from yttl.transcribe.audio import AudioChunk
from yttl.transcribe.base import ChunkRecord
from yttl.transcribe.batching import WindowText, in_order
from yttl.transcribe.chunking import ChunkOptimizer, ChunkPlan, Hardware
from yttl.transcribe.local import FasterWhisperTranscriber, SilenceOptions, WhisperModelHolder

LICENCE = Path("/usr/share/common-licenses/Apache-2.0")
TWO_CORES = Hardware(total_mb=8192, available_mb=6144, cores=2)
WAIT = 120.0  # only bounds a failure: a passing run never waits this long


class _Recorder:
    """``run`` for ``in_order``: doubles a job, counting jobs running at once; the first
    job is held until ``release`` is set (by default, when a second job starts: so two
    run at once if, and only if, there are two workers)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.active = self.most_active = self.finished = 0
        self.release = threading.Event()
        self.release_on_second = True

    def __call__(self, job: int) -> int:
        with self.lock:
            self.started.append(job)
            first = len(self.started) == 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            if not first and self.release_on_second:
                self.release.set()
        if first:
            assert self.release.wait(WAIT)
        with self.lock:
            self.active -= 1
            self.finished += 1
        return job * 2


def test_results_come_in_order_with_at_most_the_workers_at_once() -> None:
    recorder = _Recorder()
    out = list(in_order(range(40), recorder, workers=2, ahead=4))
    assert out == [(job, job * 2) for job in range(40)]
    assert sorted(recorder.started) == list(range(40))
    assert recorder.most_active == 2  # two at once, never more


def test_a_free_worker_takes_the_next_jobs_while_the_oldest_is_still_running() -> None:
    """The scheduler of the reverted attempt waited for the oldest batch before it sent
    another, leaving a worker idle: here the other worker runs every job it may take."""
    recorder = _Recorder()
    recorder.release_on_second = False
    decoded = in_order(range(20), recorder, workers=2, ahead=4)
    taken = threading.Thread(target=lambda: next(decoded))
    taken.start()
    # The first job is held; the other worker goes through the 3 others taken meanwhile.
    for _ in range(int(WAIT * 10)):
        with recorder.lock:
            if recorder.finished == 3:
                break
        threading.Event().wait(0.1)
    with recorder.lock:
        assert recorder.finished == 3 and recorder.active == 1
    recorder.release.set()
    taken.join(WAIT)
    assert [job for job, _ in decoded] == list(range(1, 20))


def test_jobs_held_at_once_do_not_grow_with_the_input() -> None:
    def held(count: int) -> int:
        """The most jobs taken from the input and not yet given out."""
        taken, most = 0, 0

        def source() -> Iterator[int]:
            nonlocal taken
            for job in range(count):
                taken += 1
                yield job

        for given, _ in enumerate(in_order(source(), _Recorder(), workers=2, ahead=4), 1):
            most = max(most, taken - given)
        return most

    assert held(2000) == held(50) <= 4


def test_closing_early_waits_for_the_jobs_running_and_drops_the_rest() -> None:
    recorder = _Recorder()
    decoded = in_order(range(200), recorder, workers=2, ahead=4)
    assert next(decoded) == (0, 0)
    decoded.close()
    assert recorder.active == 0 and recorder.finished == len(recorder.started) < 10


def test_a_failing_job_raises_in_the_consumer_and_stops_the_workers() -> None:
    started: list[int] = []

    def run(job: int) -> int:
        started.append(job)
        if job == 3:
            raise RuntimeError("model failed")
        return job

    decoded = in_order(range(100), run, workers=2, ahead=4)
    with pytest.raises(RuntimeError, match="model failed"):
        list(decoded)
    assert len(started) < 10


def test_when_the_input_fails_the_jobs_already_taken_are_given_out_first() -> None:
    """Audio damaged further on fails while batches before it are still decoding: their
    text must still come out (and be kept) before the error, not be dropped with it."""
    failed = threading.Event()

    def source() -> Iterator[int]:
        yield from range(3)
        failed.set()
        raise ValueError("cannot decode the audio")

    def run(job: int) -> int:
        assert failed.wait(WAIT)  # every job still running when the input fails
        return job * 2

    given: list[tuple[int, int]] = []
    with pytest.raises(ValueError, match="cannot decode"):
        given.extend(in_order(source(), run, workers=2, ahead=4))
    assert given == [(0, 0), (1, 2), (2, 4)]


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

    def _decode(self, batch: object) -> list[WindowText]:
        with self.lock:
            self.batches += 1
            first = self.batches == 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if first:
                assert self.later_done.wait(WAIT), "no other batch ran beside the first"
            return super()._decode(batch)  # type: ignore[arg-type]
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
    assert (defaults.workers, defaults.cpu_threads, defaults.batch_size) == (2, 1, 2)
    holder = WhisperModelHolder()
    alone = dataclasses.replace(defaults, batch_size=1, workers=1, cpu_threads=2)
    one_at_a_time = _segments(
        FasterWhisperTranscriber(MODEL_DIR, alone, holder=holder), made_speech
    )
    watched = _Watched(dataclasses.replace(defaults, batch_size=1), holder)
    batched = _segments(watched, made_speech)
    assert watched.batches >= 3
    assert watched.most_active == 2  # the first was held while another ran
    assert batched == one_at_a_time and len(batched) >= 3
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(batched))
    assert watched.stats.options["workers"] == 2 and watched.stats.options["batch_size"] == 1


def test_without_vad_whisper_reads_whole_chunks_on_one_worker_over_all_threads() -> None:
    plan = ChunkOptimizer(TWO_CORES).plan("adaptive", model=MODEL_DIR)
    plain = FasterWhisperTranscriber(MODEL_DIR, plan, silence=SilenceOptions(vad=False))
    assert (plain.stats.options["workers"], plain.stats.options["cpu_threads"]) == (1, 2)


class _DamagedAfterFirstChunk(FasterWhisperTranscriber):
    """The real transcriber on audio that cannot be read past its first chunk; the first
    chunk's batches are held until then, so they are still decoding when it fails."""

    def __init__(self, plan: ChunkPlan) -> None:
        super().__init__(MODEL_DIR, plan)
        self.failed = threading.Event()
        self.second_at = 0.0

    def _prepare(self, chunk: AudioChunk) -> Any:
        if chunk.index == 1:
            self.second_at = chunk.offset
            self.failed.set()
            raise InputError("cannot decode the audio of the rest")
        return super()._prepare(chunk)

    def _decode(self, batch: Any) -> list[WindowText]:
        assert self.failed.wait(WAIT)
        return super()._decode(batch)


class _Store:
    """A ChunkStore in memory: what a rerun would find."""

    def __init__(self) -> None:
        self.kept: dict[tuple[float, float], ChunkRecord] = {}

    def get(self, offset: float, seconds: float) -> ChunkRecord | None:
        return self.kept.get((offset, seconds))

    def put(self, offset: float, seconds: float, record: ChunkRecord) -> None:
        self.kept[offset, seconds] = record


def test_audio_damaged_after_a_chunk_keeps_that_chunk_before_the_error(
    made_speech: Path,
) -> None:
    plan = ChunkOptimizer(TWO_CORES).plan("fixed", model=MODEL_DIR, chunk_seconds=60.0)
    whole = _segments(FasterWhisperTranscriber(MODEL_DIR, plan), made_speech)
    damaged = _DamagedAfterFirstChunk(plan)
    store = _Store()
    given: list[TranscriptSegment] = []
    with pytest.raises(InputError):
        given.extend(damaged.segments(made_speech, threading.Event(), store))
    first = [segment for segment in whole if segment.start < damaged.second_at]
    assert damaged.second_at > 0 and first and given == first
    kept = store.get(0.0, damaged.second_at)
    assert kept is not None and kept.covered is None and list(kept.segments) == first


class _CountingModel:
    """The loaded model, counting the segments its ``transcribe`` has made so far."""

    def __init__(self, model: Any) -> None:
        self._model, self.made = model, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        segments, info = self._model.transcribe(*args, **kwargs)

        def counted() -> Iterator[Any]:
            for segment in segments:
                self.made += 1
                yield segment

        return counted(), info


class _CountingHolder(WhisperModelHolder):
    def __init__(self) -> None:
        super().__init__()
        self.counting: _CountingModel | None = None

    def get(self, name: str, plan: ChunkPlan, download_root: str | None) -> Any:
        if self.counting is None:
            self.counting = _CountingModel(super().get(name, plan, download_root))
        return self.counting


def test_without_vad_segments_go_out_as_heard_and_ctrl_c_stops_after_one(
    made_speech: Path,
) -> None:
    """Without VAD Whisper reads a whole chunk (minutes): its first segment must reach the
    consumer before the rest are made, and stopping then must not read the rest."""
    plan = ChunkOptimizer(TWO_CORES).plan("fixed", model=MODEL_DIR)
    holder = _CountingHolder()
    plain = FasterWhisperTranscriber(
        MODEL_DIR, plan, silence=SilenceOptions(vad=False), holder=holder
    )
    stop = threading.Event()
    heard = plain.segments(made_speech, stop)
    first = next(heard)
    assert holder.counting is not None and holder.counting.made == 1 and first.text
    stop.set()
    assert list(heard) == [] and holder.counting.made == 1
