"""Transcription benchmarks (issues 3 and 11), ratios measured in one run on this machine.

1. ``speed``: on ``lecture_gaps.opus`` (16 min, a third silence) with Whisper tiny.en int8:
   the original behaviour (fixed 5-minute chunks, no VAD, one window at a time), yttl's
   defaults (and at beams of 1 and 5), and faster-whisper's own best
   (``BatchedInferencePipeline`` on the whole file, its default beam of 5, and greedy).
   Time excludes model loading; runs are interleaved and the median is kept.
   ``unseen``: the same on speech nobody tuned on (``benchmarks/unseen_speech.py``).
2. ``overlap``: whisper plus an API LLM (loopback, 1 s a call) through ``process_video``:
   total time against transcription time plus call latencies.
3. ``memory``: peak RSS against input length (10, 60, 180 minutes) for each chunk
   strategy, each in a fresh process.
4. ``versus`` (issue 31): yttl's defaults against faster-whisper's batched pipeline at its
   defaults (beam 5, batch 8) on clean (continuous), paused and noisy speech, each on a
   quiet machine and with another process keeping one core busy: WER and the ratio of
   median times, the two interleaved in one run. ``--sentences`` shortens the speech.

    python -m benchmarks.bench_transcribe [speed] [unseen] [overlap] [memory] [versus]
        [--repeat 3] [--kinds clean,paused,noisy] [--loads quiet,busy] [--sentences 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from tests.support.server import LoopbackServer
from tests.support.videos import AUDIO
from tests.support.whisper import MODEL_DIR, word_error_rate

from yttl.config import Settings
from yttl.factory import build_transcriber
from yttl.pipeline import process_video
from yttl.transcribe.audio import SAMPLE_RATE, decode_stream
from yttl.transcribe.chunking import ChunkOptimizer, probe_hardware
from yttl.transcribe.local import FasterWhisperTranscriber, SilenceOptions

LECTURE = AUDIO / "lecture_gaps.opus"
REFERENCE = (AUDIO / "lecture_gaps.txt").read_text()


def _yttl(
    audio: Path,
    reference: str,
    strategy: str,
    seconds: float | None,
    vad: bool,
    beam: int | None = None,
) -> tuple[float, float]:
    plan = ChunkOptimizer(probe_hardware()).plan(
        strategy, model=MODEL_DIR, chunk_seconds=seconds, beam_size=beam
    )
    transcriber = FasterWhisperTranscriber(MODEL_DIR, plan, silence=SilenceOptions(vad=vad))
    transcriber._load()  # model loading is not what is compared
    start = time.perf_counter()
    text = " ".join(s.text for s in transcriber.segments(audio, threading.Event()))
    return time.perf_counter() - start, word_error_rate(reference, text)


def _faster_whisper_batched(
    audio: Path, reference: str, beam: int = 5, threads: int = 0
) -> tuple[float, float]:
    """faster-whisper's own best: its batched pipeline on the whole file (beam 5 is its
    default; ``threads`` 0 is its default of 4, which on 2 cores is more than there are)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    model = WhisperModel(MODEL_DIR, device="cpu", compute_type="int8", cpu_threads=threads)
    pipeline = BatchedInferencePipeline(model)
    start = time.perf_counter()
    segments, _ = pipeline.transcribe(
        decode_audio(str(audio)), language="en", batch_size=8, beam_size=beam
    )
    text = " ".join(s.text for s in segments)
    return time.perf_counter() - start, word_error_rate(reference, text)


RUNS = {
    "original": lambda a, r: _yttl(a, r, "fixed", 300, vad=False, beam=5),
    "defaults": lambda a, r: _yttl(a, r, "adaptive", None, vad=True),
    "fw_best": lambda a, r: _faster_whisper_batched(a, r),
    "fw_cores": lambda a, r: _faster_whisper_batched(a, r, threads=os.cpu_count() or 1),
    "fw_greedy": lambda a, r: _faster_whisper_batched(a, r, beam=1),
    "defaults_beam2": lambda a, r: _yttl(a, r, "adaptive", None, vad=True, beam=2),
    "defaults_beam5": lambda a, r: _yttl(a, r, "adaptive", None, vad=True, beam=5),
    "defaults_greedy": lambda a, r: _yttl(a, r, "adaptive", None, vad=True, beam=1),
}


def speed(
    repeat: int,
    audio: Path = LECTURE,
    reference: str = REFERENCE,
    names: tuple[str, ...] = tuple(RUNS),
) -> dict[str, Any]:
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    loads, cpu = [], {name: [] for name in names}
    for _ in range(repeat):  # interleaved, so a slow spell of the machine hits all alike
        for name in names:
            before = resource.getrusage(resource.RUSAGE_SELF)
            runs[name].append(RUNS[name](audio, reference))
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            loads.append(os.getloadavg()[0])
            print(
                f"  {name:<16} {runs[name][-1][0]:6.2f} s  WER {runs[name][-1][1]:.4f}"
                f"  CPU {cpu[name][-1]:6.1f} s  (load average {loads[-1]:.1f})",
                flush=True,
            )
    seconds = sum(len(block) for block in decode_stream(audio)) / SAMPLE_RATE
    result: dict[str, Any] = {
        name: {
            "seconds": statistics.median(t for t, _ in r),
            "wer": r[0][1],
            "real_time_factor": statistics.median(t for t, _ in r) / seconds,
            "cpu_seconds": statistics.median(cpu[name]),
        }
        for name, r in runs.items()
    }
    # against the faster of faster-whisper's thread settings (its default, and the cores)
    fw = [name for name in ("fw_best", "fw_cores") if name in result]
    for name in names:
        if fw and not name.startswith("fw_"):
            fastest = min(result[other]["seconds"] for other in fw)
            result[name]["speed_vs_fw_best"] = fastest / result[name]["seconds"]
            result[name]["wer_vs_fw_best"] = result[name]["wer"] - result[fw[0]]["wer"]
    result["load_average"] = {
        "min": min(loads),
        "median": statistics.median(loads),
        "max": max(loads),
    }
    return result


KINDS = {"clean": "continuous", "paused": "licences", "noisy": "noisy"}


def versus(
    repeat: int, kinds: list[str], loads: list[str], sentences: int | None
) -> dict[str, Any]:
    """Issue 31: yttl's defaults against faster-whisper batched at its defaults, on each
    kind of speech, quiet and with one core kept busy by another process."""
    from benchmarks.unseen_speech import build

    results: dict[str, Any] = {}
    for kind in kinds:
        audio, reference = build(Path(tempfile.gettempdir()) / "yttl-bench", KINDS[kind], sentences)
        for load in loads:
            print(f" {kind}, {load}:", flush=True)
            spinner = None
            if load == "busy":  # another program keeping one core busy
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                results[f"{kind}/{load}"] = speed(
                    repeat, audio, reference, ("defaults", "fw_best", "fw_cores")
                )
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
    return results


def unseen(repeat: int) -> dict[str, Any]:
    """The same comparison on speech nobody tuned on (``benchmarks/unseen_speech.py``):
    long pauses, continuous talk, and the first under a noise floor."""
    from benchmarks.unseen_speech import build

    names = ("defaults", "fw_best", "defaults_beam2", "defaults_beam5")
    results: dict[str, Any] = {}
    for kind in ("licences", "continuous", "noisy"):
        print(f" {kind}:")
        audio, reference = build(Path(tempfile.gettempdir()) / "yttl-bench", kind)
        results[kind] = speed(repeat, audio, reference, names)
    return results


def _report(result: dict[str, Any]) -> None:
    for name, r in result.items():
        if name == "load_average":
            print(f"load average {r['min']:.1f}-{r['max']:.1f} (median {r['median']:.1f})")
            continue
        against = ""
        if "speed_vs_fw_best" in r:
            against = (
                f"  vs faster-whisper batched: {r['speed_vs_fw_best']:.2f}x as fast, "
                f"WER {r['wer_vs_fw_best']:+.4f}"
            )
        print(
            f"{name:<16} {r['seconds']:7.2f} s  CPU {r['cpu_seconds']:6.1f} s"
            f"  RTF {r['real_time_factor']:.3f}  WER {r['wer']:.4f}{against}"
        )


def overlap(latency: float = 1.0) -> dict[str, Any]:
    environ = {"OPENAI_API_KEY": "sk-benchmark"}
    with LoopbackServer() as server:
        server.state.latency = latency
        settings = Settings(
            llm_provider="openai",
            openai_base_url=server.openai_base_url,
            local_whisper_model=MODEL_DIR,
            cache=False,
        )
        transcriber = build_transcriber(settings, environ)
        transcriber._load()  # type: ignore[attr-defined]
        start = time.perf_counter()
        only = sum(1 for _ in transcriber.segments(LECTURE, threading.Event()))  # type: ignore[attr-defined]
        transcription = time.perf_counter() - start
        transcriber = build_transcriber(settings, environ)
        transcriber._load()  # type: ignore[attr-defined]
        start = time.perf_counter()
        result = asyncio.run(
            process_video(str(LECTURE), settings, transcriber=transcriber, environ=environ)
        )
        total = time.perf_counter() - start
        calls = len(server.state.calls)
    return {
        "transcription_seconds": transcription,
        "total_seconds": total,
        "llm_calls": calls,
        "latency": latency,
        "segments": only,
        "overhead_in_latencies": (total - transcription) / latency,
        "sections": sum(len(h.sections) for h in result.hours),
    }


def _long_input(directory: Path, minutes: int) -> Path:
    path = directory / f"input-{minutes}.opus"
    if path.exists():
        return path
    lecture = np.concatenate(list(decode_stream(LECTURE)))
    total = minutes * 60 * SAMPLE_RATE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE)
        stream.layout = "mono"
        written = 0
        while written < total:
            piece = lecture[: min(len(lecture), total - written)]
            for start in range(0, len(piece), 10 * SAMPLE_RATE):
                block = np.ascontiguousarray(piece[None, start : start + 10 * SAMPLE_RATE])
                frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
                frame.rate, frame.pts = SAMPLE_RATE, written + start
                for packet in stream.encode(frame):
                    container.mux(packet)
            written += len(piece)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _peak_rss(audio: Path, strategy: str) -> tuple[float, float]:
    code = (
        "import sys, threading, resource, time\n"
        "from yttl.transcribe.chunking import ChunkOptimizer, probe_hardware\n"
        "from yttl.transcribe.local import FasterWhisperTranscriber\n"
        f"plan = ChunkOptimizer(probe_hardware()).plan({strategy!r}, model={MODEL_DIR!r})\n"
        f"t = FasterWhisperTranscriber({MODEL_DIR!r}, plan)\n"
        "start = time.perf_counter()\n"
        f"n = sum(1 for _ in t.segments({str(audio)!r}, threading.Event()))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "time.perf_counter() - start)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"transcribing {audio.name} with {strategy} failed:\n{out.stderr}")
    peak, seconds = out.stdout.split()
    return float(peak), float(seconds)


def memory(lengths: list[int], strategies: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in lengths:
            audio = _long_input(Path(tmp), minutes)
            for strategy in strategies:
                peak, seconds = _peak_rss(audio, strategy)
                result.setdefault(strategy, {})[minutes] = {"peak_mb": peak, "seconds": seconds}
                print(
                    f"  {strategy:<17} {minutes:>4} min: peak {peak:7.0f} MB, {seconds:7.1f} s",
                    flush=True,
                )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["speed", "unseen", "overlap", "memory"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lengths", default="10,60,180", help="minutes, for memory")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--kinds", default="clean,paused,noisy", help="speech, for versus")
    parser.add_argument("--loads", default="quiet,busy", help="for versus")
    parser.add_argument("--sentences", type=int, help="versus on the first so many sentences")
    parser.add_argument(
        "--strategies", default="adaptive,fixed,memory_optimized", help="for memory"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if "speed" in args.parts:
        print("the shared lecture:")
        results["speed"] = r = speed(args.repeat)
        _report(r)
    if "unseen" in args.parts:
        print("speech nobody tuned on:")
        results["unseen"] = r = unseen(args.repeat)
        for kind, by_run in r.items():
            print(f" {kind}:")
            _report(by_run)
    if "overlap" in args.parts:
        results["overlap"] = o = overlap()
        print(
            f"overlap: transcription {o['transcription_seconds']:.1f} s, whole run "
            f"{o['total_seconds']:.1f} s = transcription + {o['overhead_in_latencies']:.2f} "
            f"call latencies ({o['llm_calls']} calls of {o['latency']} s)"
        )
    if "memory" in args.parts:
        print("peak memory against input length:")
        results["memory"] = memory(
            [int(x) for x in args.lengths.split(",")], args.strategies.split(",")
        )
    if "versus" in args.parts:
        print("against faster-whisper batched (issue 31):")
        results["versus"] = r = versus(
            args.repeat, args.kinds.split(","), args.loads.split(","), args.sentences
        )
        for condition, by_run in r.items():
            print(f" {condition}:")
            _report(by_run)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
