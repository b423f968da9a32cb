"""Where a run's time and memory went: phases, LLM calls in flight, counters.

``PerformanceTracker`` is filled by the stages as they run; ``stats()`` turns it into the
``ProcessingStats`` mapping of DESIGN §6 that goes into the JSON output and reports.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
from rich.table import Table

__all__ = [
    "CallRecord",
    "MemorySampler",
    "PerformanceTracker",
    "in_flight_profile",
    "report_table",
]

PHASES = ("resolve", "captions", "download", "transcribe", "summarize", "render")


@dataclass(frozen=True)
class CallRecord:
    label: str
    start: float
    end: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ok: bool = True


def in_flight_profile(calls: list[CallRecord]) -> tuple[int, float]:
    """Maximum and time-weighted mean number of calls in flight between first start and
    last end."""
    if not calls:
        return 0, 0.0
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls])
    current = peak = 0
    weighted = 0.0
    last = events[0][0]
    for moment, delta in events:
        weighted += current * (moment - last)
        last = moment
        current += delta
        peak = max(peak, current)
    span = max(c.end for c in calls) - min(c.start for c in calls)
    return peak, (weighted / span if span > 0 else float(peak))


class MemorySampler:
    """Samples the resident memory of this process and its children in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yttl-memory", daemon=True)
        self.peak_bytes = 0

    def sample(self) -> None:
        process = psutil.Process()
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class PerformanceTracker:
    max_concurrent_llm: int = 1
    started: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    memory_peak_bytes: int = 0
    transcription: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    def add_phase(self, name: str, seconds: float) -> None:
        with self._lock:
            self.phases[name] = self.phases.get(name, 0.0) + seconds

    def record_call(self, record: CallRecord) -> None:
        with self._lock:
            self.calls.append(record)

    def count(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self.counters[name] += amount  # type: ignore[assignment]

    def error(self, category: str) -> None:
        with self._lock:
            self.errors[category] += 1

    def llm_phase_seconds(self) -> float:
        if not self.calls:
            return 0.0
        return max(c.end for c in self.calls) - min(c.start for c in self.calls)

    def stats(self) -> dict[str, object]:
        peak, mean = in_flight_profile(self.calls)
        busy = sum(c.end - c.start for c in self.calls)
        span = self.llm_phase_seconds()
        return {
            "total_seconds": round(time.perf_counter() - self.started, 3),
            "phase_seconds": {k: round(v, 3) for k, v in self.phases.items()},
            "llm_calls": len(self.calls),
            "llm_seconds_sum": round(busy, 3),
            "llm_phase_seconds": round(span, 3),
            "max_in_flight": peak,
            "mean_in_flight": round(mean, 3),
            "concurrency_efficiency": round(mean / max(self.max_concurrent_llm, 1), 3),
            "speedup_vs_sequential_estimate": round(busy / span, 3) if span > 0 else 1.0,
            "tokens": {
                "prompt": sum(c.prompt_tokens for c in self.calls),
                "completion": sum(c.completion_tokens for c in self.calls),
            },
            "audio_seconds": round(self.counters["audio_seconds"], 3),
            "speech_seconds": round(self.counters["speech_seconds"], 3),
            "silence_skipped_seconds": round(self.counters["silence_skipped_seconds"], 3),
            "chunks": int(self.counters["chunks"]),
            "memory_peak_mb": round(self.memory_peak_bytes / 2**20, 1),
            "retries": int(self.counters["retries"]),
            "errors": dict(self.errors),
            "cache_hits": int(self.counters["cache_hits"]),
            "breaker_trips": int(self.counters["breaker_trips"]),
            "transcription": self.transcription,
        }


def report_table(stats: dict[str, object]) -> Table:
    """The ``--report`` table: where the run's time and memory went."""
    table = Table(title="yttl performance", show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    phases = stats.get("phase_seconds") or {}
    errors = stats.get("errors") or {}
    assert isinstance(phases, dict) and isinstance(errors, dict)
    for name, seconds in phases.items():
        table.add_row(f"phase: {name}", f"{seconds:.2f} s")
    rows = [
        ("total", f"{stats.get('total_seconds', 0):.2f} s"),
        ("LLM calls", str(stats.get("llm_calls", 0))),
        ("LLM phase (first start to last end)", f"{stats.get('llm_phase_seconds', 0):.2f} s"),
        ("LLM time summed over calls", f"{stats.get('llm_seconds_sum', 0):.2f} s"),
        ("calls in flight: max / mean", f"{stats.get('max_in_flight', 0)} / "
                                        f"{stats.get('mean_in_flight', 0):.2f}"),
        ("concurrency efficiency", f"{stats.get('concurrency_efficiency', 0):.0%}"),
        ("speedup over sequential (estimate)",
         f"{stats.get('speedup_vs_sequential_estimate', 0):.2f}x"),
        ("audio / speech seconds", f"{stats.get('audio_seconds', 0):.0f} / "
                                   f"{stats.get('speech_seconds', 0):.0f}"),
        ("silence skipped", f"{stats.get('silence_skipped_seconds', 0):.0f} s"),
        ("audio chunks", str(stats.get("chunks", 0))),
        ("memory peak", f"{stats.get('memory_peak_mb', 0):.0f} MB"),
        ("retries / breaker trips", f"{stats.get('retries', 0)} / {stats.get('breaker_trips', 0)}"),
        ("errors", ", ".join(f"{k} {v}" for k, v in errors.items()) or "none"),
        ("cache hits", str(stats.get("cache_hits", 0))),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    return table
