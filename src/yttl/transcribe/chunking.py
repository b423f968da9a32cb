"""How to cut audio for this machine: the hardware probe and the ``ChunkOptimizer``.

Memory per second of audio in a chunk: 64 KB of float32 samples, 32 KB of log-mel features
in the batched pipeline, and working copies; about 0.2 MB a second all told. Chunks grow
where memory and acceleration allow and shrink where memory is tight, but never past a
size that would make a long input's peak memory differ from a short one's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from yttl.errors import ResourceError

__all__ = ["ChunkOptimizer", "ChunkPlan", "Hardware", "model_memory_mb", "probe_hardware"]

# A beam of 4 on a CPU: at or below the WER of faster-whisper's batched pipeline (its beam
# of 5) on clean, continuous and noisy speech, at about 1.1x its speed on 2 cores. Narrower
# beams lose words under a noise floor (WER +0.027 at 3), where a beam of 5 gains little
# more and costs the speed. On a GPU a beam costs little. See docs/performance.md.
CPU_BEAM = 4
GPU_BEAM = 5
MB_PER_AUDIO_SECOND = 0.2
MODEL_MB = {  # int8 on CPU; float16 on CUDA is about twice as much
    "tiny": 75,
    "base": 145,
    "small": 480,
    "medium": 1500,
    "large": 3100,
    "turbo": 1700,
}


@dataclass(frozen=True)
class Hardware:
    total_mb: int
    available_mb: int
    cores: int
    cuda_devices: int = 0

    @property
    def has_cuda(self) -> bool:
        return self.cuda_devices > 0


def probe_hardware() -> Hardware:
    memory = psutil.virtual_memory()
    cuda = 0
    try:
        import ctranslate2

        cuda = ctranslate2.get_cuda_device_count()
    except Exception:  # no CUDA runtime at all is the common case
        cuda = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Hardware(memory.total // 2**20, memory.available // 2**20, cores or 1, cuda)


def model_memory_mb(model: str) -> int:
    name = os.path.basename(model.rstrip("/")).lower()
    for key, size in MODEL_MB.items():
        if key in name:
            return size
    return MODEL_MB["base"]


@dataclass(frozen=True)
class ChunkPlan:
    """The transcription settings actually used; recorded with the result."""

    strategy: str
    chunk_seconds: float
    batch_size: int
    device: str
    compute_type: str
    cpu_threads: int
    search_seconds: float = 30.0
    beam_size: int = 1
    workers: int = 1  # batches decoded at once, each by ``cpu_threads`` threads


class ChunkOptimizer:
    """Picks chunk length, batch size and compute type from the hardware and a budget."""

    MIN_CHUNK = 60.0
    # Longer chunks gain nothing once speech is packed into windows (one part-filled window
    # a chunk), and every second of a chunk is held in memory a few times over.
    MAX_CHUNK = 300.0

    def __init__(self, hardware: Hardware, memory_limit_mb: int | None = None) -> None:
        self.hardware = hardware
        self.memory_limit_mb = memory_limit_mb

    def budget_mb(self) -> float:
        """Memory this run may use: the limit if given, else half of what is free."""
        free = self.hardware.available_mb * 0.5
        return min(free, self.memory_limit_mb) if self.memory_limit_mb else free

    def plan(
        self,
        strategy: str,
        *,
        model: str = "base.en",
        chunk_seconds: float | None = None,
        beam_size: int | None = None,
    ) -> ChunkPlan:
        cuda = self.hardware.has_cuda
        device, compute = ("cuda", "float16") if cuda else ("cpu", "int8")
        model_mb = model_memory_mb(model) * (2 if cuda else 1)
        room = self.budget_mb() - model_mb
        if room < MB_PER_AUDIO_SECOND * self.MIN_CHUNK / 2:
            raise ResourceError(
                f"not enough memory to transcribe with {model}: about {model_mb + 20} MB "
                f"needed, {self.budget_mb():.0f} MB available",
                hint="raise --memory-limit-mb, close other programs, or pick a smaller "
                "--local-whisper-model",
            )
        # On a CPU, two model workers of one thread each decode two small batches side by
        # side: no thread waits on another inside an operation, and a batch of 2 windows
        # holds a quarter of the cross-attention cache of a batch of 8. On 2 cores that is
        # 1.4x the speed of one batch of 8 over both cores at two thirds of the memory
        # (1.3x with another program keeping a core busy); larger batches gain nothing.
        workers = 1 if cuda or self.hardware.cores < 2 else 2
        threads = max(self.hardware.cores // workers, 1)
        if strategy == "fixed":
            seconds = chunk_seconds or 300.0
            batch = 16 if cuda else 2
        elif strategy == "memory_optimized":
            seconds = min(chunk_seconds or 120.0, max(room / MB_PER_AUDIO_SECOND, 30.0))
            batch = 1
        else:  # adaptive: as large as memory allows, within bounds that keep peaks flat
            fits = room / MB_PER_AUDIO_SECOND / 3  # one chunk decoding, one queued, one working
            seconds = chunk_seconds or max(self.MIN_CHUNK, min(self.MAX_CHUNK, fits))
            batch = 16 if cuda else 2 if room > 1024 else 1
        beam = beam_size or (GPU_BEAM if cuda else CPU_BEAM)
        return ChunkPlan(
            strategy,
            float(seconds),
            batch,
            device,
            compute,
            threads,
            beam_size=beam,
            workers=workers,
        )
