"""Transcription with the real Whisper tiny.en on real and synthesized audio."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.server import LoopbackServer
from tests.support.videos import AUDIO
from tests.support.whisper import MODEL_DIR, long_silences, transcribe_upload, word_error_rate
from yttl.models import TranscriptSegment
from yttl.transcribe.api import ApiTranscriber, chunk_seconds_for_limit
from yttl.transcribe.audio import (
    SAMPLE_RATE,
    decode_stream,
    encode_opus,
    iter_chunks,
    iter_encoded_chunks,
)
from yttl.transcribe.chunking import ChunkOptimizer, ChunkPlan, Hardware
from yttl.transcribe.local import FasterWhisperTranscriber, SilenceOptions

LAPTOP = Hardware(total_mb=16_000, available_mb=8_000, cores=4)
LECTURE = AUDIO / "lecture_gaps.opus"


def _plan(strategy: str = "adaptive", seconds: float | None = None) -> ChunkPlan:
    return ChunkOptimizer(LAPTOP).plan(strategy, model=MODEL_DIR, chunk_seconds=seconds)


def _transcribe(path: Path, plan: ChunkPlan, silence: SilenceOptions | None = None,
                ) -> tuple[list[TranscriptSegment], FasterWhisperTranscriber]:  # fmt: skip
    transcriber = FasterWhisperTranscriber(MODEL_DIR, plan, silence=silence)
    return list(transcriber.segments(path, threading.Event())), transcriber


def _text(segments: list[TranscriptSegment]) -> str:
    return " ".join(s.text for s in segments)


def _write_flac(path: Path, samples: np.ndarray) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        pcm = (np.clip(samples, -1, 1) * 32000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def _lecture_slice(tmp_path: Path, seconds: float, start: float = 0.0) -> Path:
    samples = np.concatenate(list(decode_stream(LECTURE)))
    piece = samples[int(start * SAMPLE_RATE) : int((start + seconds) * SAMPLE_RATE)]
    return _write_flac(tmp_path / f"lecture-{int(start)}-{int(seconds)}.flac", piece)


@pytest.mark.corpus
def test_jfk_word_error_rate() -> None:
    segments, transcriber = _transcribe(AUDIO / "jfk.flac", _plan())
    wer = word_error_rate((AUDIO / "jfk.txt").read_text(), _text(segments))
    assert wer <= 0.15, (wer, _text(segments))
    assert transcriber.stats.audio_seconds == pytest.approx(11.0, abs=0.1)
    assert transcriber.stats.language == "en"


@pytest.fixture(scope="module")
def lecture_defaults() -> tuple[list[TranscriptSegment], FasterWhisperTranscriber]:
    """The 16-minute lecture with yttl's defaults, shared by the tests that compare to it."""
    return _transcribe(LECTURE, _plan())


@pytest.mark.corpus
def test_lecture_with_vad_matches_fixed_chunks_without_and_skips_the_silence(
    lecture_defaults: tuple[list[TranscriptSegment], FasterWhisperTranscriber],
) -> None:
    reference = (AUDIO / "lecture_gaps.txt").read_text()
    # the original behaviour: fixed 5-minute chunks, no VAD, faster-whisper's beam of 5
    original = dataclasses.replace(_plan("fixed", 300), beam_size=5)
    fixed, plain = _transcribe(LECTURE, original, SilenceOptions(vad=False))
    ours, adaptive = lecture_defaults
    fixed_wer = word_error_rate(reference, _text(fixed))
    our_wer = word_error_rate(reference, _text(ours))
    assert our_wer <= fixed_wer + 0.01, (our_wer, fixed_wer)
    # about a third of the file is silence, and it was not transcribed
    stats = adaptive.stats
    assert stats.audio_seconds == pytest.approx(973.2, abs=0.5)
    assert stats.speech_seconds < 0.8 * stats.audio_seconds
    assert plain.stats.speech_seconds == pytest.approx(plain.stats.audio_seconds)
    for segments in (fixed, ours):
        assert all(a.start <= b.start and a.end <= b.start + 1e-6
                   for a, b in itertools.pairwise(segments))  # fmt: skip
        assert segments[-1].end <= 973.3


@pytest.mark.corpus
def test_defaults_are_as_accurate_as_faster_whispers_batched_pipeline_without_dating_words_wrong(
    lecture_defaults: tuple[list[TranscriptSegment], FasterWhisperTranscriber],
) -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    reference = (AUDIO / "lecture_gaps.txt").read_text()
    pipeline = BatchedInferencePipeline(WhisperModel(MODEL_DIR, device="cpu", compute_type="int8"))
    theirs, _ = pipeline.transcribe(decode_audio(str(LECTURE)), language="en", batch_size=8)
    their_wer = word_error_rate(reference, " ".join(s.text for s in theirs))
    ours = lecture_defaults[0]
    assert word_error_rate(reference, _text(ours)) <= their_wer + 0.01
    # Speech is packed into full windows across the lecture's 20 s silences, and the text
    # cut again there: no segment spans a silence, so no word is dated before it was said.
    silences = long_silences(LECTURE, 10.0)
    assert len(silences) >= 12
    for segment in ours:
        for start, end in silences:
            assert min(segment.end, end) - max(segment.start, start) < 1.0, (segment, start, end)
    assert max(s.end - s.start for s in ours) <= 30.5


@pytest.mark.corpus
def test_chunk_boundaries_inside_speech_lose_and_duplicate_no_words(
    lecture_defaults: tuple[list[TranscriptSegment], FasterWhisperTranscriber],
) -> None:
    # 45-second chunks that must cut within 3 s of their nominal end: most cuts fall in the
    # short pauses of running speech, not in the lecture's long silences.
    plan = dataclasses.replace(_plan("fixed", 45), search_seconds=3)
    pieces, transcriber = _transcribe(LECTURE, plan)
    reference = (AUDIO / "lecture_gaps.txt").read_text()
    whole = lecture_defaults[0]
    assert transcriber.stats.chunks >= 20
    assert (
        word_error_rate(reference, _text(pieces))
        <= word_error_rate(reference, _text(whole)) + 0.015
    )
    words = len(_text(pieces).split())
    assert abs(words - len(_text(whole).split())) <= 0.015 * words
    starts = [s.start for s in pieces]
    assert starts == sorted(starts) and pieces[-1].end <= 973.3


def test_chunks_tile_the_audio_exactly_and_cut_in_silence() -> None:
    rng = np.random.default_rng(7)
    pieces, gaps = [], []
    position = 0
    for _i in range(40):  # 40 bursts of "speech" with short pauses between them
        burst = rng.normal(0, 0.2, int(rng.uniform(2, 6) * SAMPLE_RATE)).astype(np.float32)
        pause = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
        pieces += [burst, pause]
        position += len(burst)
        gaps.append((position, position + len(pause)))
        position += len(pause)
    samples = np.concatenate(pieces)
    blocks = iter(np.array_split(samples, 17))
    chunks = list(iter_chunks(blocks, chunk_seconds=30, search_seconds=5))
    assert len(chunks) > 4
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), samples)
    offset = 0
    for chunk in chunks:
        assert chunk.offset == offset / SAMPLE_RATE
        offset += len(chunk.samples)
    for chunk in chunks[:-1]:
        cut = round(chunk.end * SAMPLE_RATE)
        assert any(start <= cut <= end for start, end in gaps), cut


def test_silence_and_music_produce_no_text_and_little_work(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    silence = _write_flac(tmp_path / "silence.flac",
                          rng.normal(0, 0.0005, 300 * SAMPLE_RATE).astype(np.float32))  # fmt: skip
    t = np.arange(90 * SAMPLE_RATE) / SAMPLE_RATE
    notes = [261.6, 329.6, 392.0, 523.3, 440.0, 349.2]
    music = np.zeros_like(t)
    for beat in range(90):
        span = slice(beat * SAMPLE_RATE, (beat + 1) * SAMPLE_RATE)
        decay = np.exp(-3 * (t[span] - beat))
        for f in (notes[beat % 6], notes[(beat + 2) % 6] * 1.5):
            music[span] += 0.2 * np.sin(2 * np.pi * f * t[span]) * decay
    music_path = _write_flac(tmp_path / "music.flac", music.astype(np.float32))

    segments, transcriber = _transcribe(silence, _plan())
    assert segments == [] and transcriber.stats.skipped_chunks == transcriber.stats.chunks
    assert transcriber.stats.speech_seconds == 0
    segments, transcriber = _transcribe(music_path, _plan())
    assert len(_text(segments).split()) <= 3, _text(segments)
    assert transcriber.stats.speech_seconds < 30


def test_chunk_optimizer_sizes_to_memory_and_hardware() -> None:
    from yttl.errors import ResourceError

    roomy = ChunkOptimizer(Hardware(64_000, 48_000, 16)).plan("adaptive", model="base.en")
    tight = ChunkOptimizer(Hardware(4_000, 3_000, 2), memory_limit_mb=300).plan(
        "adaptive", model="base.en")  # fmt: skip
    gpu = ChunkOptimizer(Hardware(64_000, 48_000, 16, cuda_devices=1)).plan("adaptive")
    low = ChunkOptimizer(Hardware(8_000, 6_000, 4)).plan("memory_optimized")
    assert roomy.chunk_seconds >= tight.chunk_seconds and roomy.batch_size > tight.batch_size
    assert roomy.compute_type == "int8" and roomy.device == "cpu"
    assert (gpu.device, gpu.compute_type) == (
        "cuda",
        "float16",
    ) and gpu.batch_size > roomy.batch_size
    assert low.chunk_seconds <= 120 and low.batch_size < roomy.batch_size
    assert ChunkOptimizer(LAPTOP).plan("fixed", chunk_seconds=90).chunk_seconds == 90
    with pytest.raises(ResourceError, match="3120 MB needed, 100 MB available") as info:
        ChunkOptimizer(LAPTOP, memory_limit_mb=100).plan("adaptive", model="large-v3")
    assert "--memory-limit-mb" in (info.value.hint or "")


@pytest.mark.corpus
def test_encoded_chunks_fit_the_upload_limit_and_keep_offsets(tmp_path: Path) -> None:
    limit = 200 * 1024
    seconds = chunk_seconds_for_limit(limit, 24_000)
    chunks = list(iter_encoded_chunks(decode_stream(LECTURE), seconds))
    assert len(chunks) >= 5
    assert all(len(c.data) <= limit for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert b.offset == pytest.approx(a.offset + a.seconds)
    assert sum(c.seconds for c in chunks) == pytest.approx(973.2, abs=0.05)
    assert len(encode_opus(np.zeros(SAMPLE_RATE * 10, np.float32))) < 20_000


@pytest.mark.corpus
def test_the_api_path_uploads_concurrently_in_order_with_exact_offsets(tmp_path: Path) -> None:
    audio = _lecture_slice(tmp_path, 300, start=60)
    local, _ = _transcribe(audio, _plan())
    with LoopbackServer() as server:
        server.state.transcribe = transcribe_upload
        transcriber = ApiTranscriber(provider="loopback", base_url=server.openai_base_url,
                                     api_key="sk-test", model="whisper-large-v3",
                                     upload_limit_mb=0.15, max_concurrent=3)  # fmt: skip

        async def run() -> list[TranscriptSegment]:
            return [s async for s in transcriber.transcribe(audio)]

        segments = asyncio.run(run())
        calls = server.state.transcription_calls
    stats = transcriber.stats
    assert len(calls) == stats.chunks - stats.skipped_chunks >= 4  # silent chunks: no upload
    assert {c.model for c in calls} == {"whisper-large-v3"}
    assert server.state.max_transcriptions_in_flight >= 2
    # the server decodes with its own settings (beam 5), so the words differ a little ...
    assert word_error_rate(_text(local), _text(segments)) <= 0.2
    # ... and the windows differ, but the offsets must match: a chunk's segments land where
    # the same speech is in the local transcript, never a chunk (~43 s) away
    local_starts = np.array([s.start for s in local])
    assert max(np.min(np.abs(local_starts - s.start)) for s in segments) <= 15.0
    starts = [s.start for s in segments]
    assert starts == sorted(starts) and 250 < segments[-1].end <= 300.01


def _peak_rss_mb(audio: Path) -> float:
    code = (
        "import sys, threading, resource\n"
        "from yttl.transcribe.chunking import ChunkOptimizer, probe_hardware\n"
        "from yttl.transcribe.local import FasterWhisperTranscriber\n"
        f"plan = ChunkOptimizer(probe_hardware()).plan('adaptive', model={MODEL_DIR!r})\n"
        f"t = FasterWhisperTranscriber({MODEL_DIR!r}, plan)\n"
        f"n = sum(1 for _ in t.segments({str(audio)!r}, threading.Event()))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=600)  # fmt: skip
    peak, segments = result.stdout.split()
    assert int(segments) > 0
    return float(peak)


@pytest.mark.corpus
def test_peak_memory_does_not_grow_with_input_length(tmp_path: Path) -> None:
    samples = np.concatenate(list(decode_stream(LECTURE)))
    short = _write_flac(tmp_path / "ten.flac", samples[: 600 * SAMPLE_RATE])
    hour = np.tile(samples, 4)[: 3600 * SAMPLE_RATE]
    long = tmp_path / "hour.opus"
    with av.open(str(long), "w") as container:  # Opus keeps the test's own file small
        stream = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.layout = "mono"
        for start in range(0, len(hour), 10 * SAMPLE_RATE):
            frame = av.AudioFrame.from_ndarray(hour[None, start : start + 10 * SAMPLE_RATE],
                                               format="flt", layout="mono")  # fmt: skip
            frame.rate, frame.pts = SAMPLE_RATE, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    del samples, hour
    short_peak, long_peak = _peak_rss_mb(short), _peak_rss_mb(long)
    (tmp_path / "memory.json").write_text(json.dumps([short_peak, long_peak]))
    print(f"peak RSS: 10 min {short_peak:.0f} MB, 60 min {long_peak:.0f} MB")
    assert long_peak <= 1.3 * short_peak, (short_peak, long_peak)
