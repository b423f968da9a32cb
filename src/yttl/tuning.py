"""Tuning: every performance knob in one place, and advice for this machine.

``PerformanceConfig`` is the view of ``Settings`` that holds the knobs (concurrency,
chunking, VAD, retries, timeouts, memory, local model instances), with the defaults a run
would actually use filled in. ``suggest`` turns the hardware probe, a video length and a
provider into recommended values, each with its reason (``yttl config suggest``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

from yttl.config import Settings
from yttl.endpoints import endpoint_for, llm_endpoint
from yttl.errors import YttlError
from yttl.factory import max_concurrent_llm
from yttl.llm.presets import PRESETS
from yttl.messages import count_of
from yttl.transcribe.chunking import CPU_BEAM, GPU_BEAM, ChunkOptimizer, Hardware

__all__ = ["PerformanceConfig", "Suggestion", "effective_defaults", "parse_duration", "suggest"]

TOKENS_PER_SECTION = 1_900  # a 5-minute transcript (~1,000 words) plus prompt and answer


@dataclass(frozen=True)
class PerformanceConfig:
    max_concurrent_llm: int
    max_concurrent_whisper: int | None
    sequential: bool
    chunk_strategy: str
    chunk_seconds: float | None
    beam_size: int | None
    vad: bool
    silence_threshold_db: float
    min_silence_seconds: float
    retry_max_attempts: int
    retry_base_delay: float
    request_timeout: float | None
    requests_per_minute: float | None
    tokens_per_minute: float | None
    memory_limit_mb: int | None
    local_llm_instances: int | None
    local_llm_threads: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PerformanceConfig:
        fields = {k: v for k, v in asdict(settings).items() if k in cls.__dataclass_fields__}
        fields["max_concurrent_llm"] = max_concurrent_llm(settings, environ={})
        return cls(**fields)


@dataclass(frozen=True)
class Suggestion:
    key: str
    value: object
    reason: str


def parse_duration(text: str) -> float:
    """``2h``, ``90m``, ``1h30m``, ``45s`` or plain seconds."""
    text = text.strip().lower()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            raise ValueError(f"cannot read a duration from {text!r} (try 2h, 90m, 1h30m)")
    if number:
        raise ValueError(f"a unit is missing after {number} in {text!r}")
    return total


def _whisper_model(hardware: Hardware) -> tuple[str, str]:
    if hardware.has_cuda:
        return "large-v3", "a GPU runs the most accurate model faster than a CPU runs base.en"
    if hardware.available_mb >= 8_000 and hardware.cores >= 8:
        return "small.en", f"{hardware.cores} cores and {hardware.available_mb} MB free afford it"
    if hardware.available_mb < 2_000:
        return "tiny.en", f"only {hardware.available_mb} MB free"
    return "base.en", "accurate enough for summaries at about 0.1 of real time on a laptop CPU"


def suggest(hardware: Hardware, duration: float, provider: str) -> list[Suggestion]:
    sections = max(1, math.ceil(duration / 300))
    hours = max(1, math.ceil(duration / 3600))
    calls = sections + hours
    out: list[Suggestion] = []
    model, why = _whisper_model(hardware)
    out.append(Suggestion("local_whisper_model", model, why))
    if hardware.available_mb < 3_000:
        out.append(
            Suggestion(
                "chunk_strategy",
                "memory_optimized",
                f"{hardware.available_mb} MB free: small chunks, small batches",
            )
        )
        out.append(
            Suggestion(
                "memory_limit_mb",
                max(hardware.available_mb // 2, 256),
                "leave half of the free memory to the rest of the system",
            )
        )
    else:
        plan = ChunkOptimizer(hardware).plan("adaptive", model=model)
        out.append(
            Suggestion(
                "chunk_strategy",
                "adaptive",
                f"chunks of {plan.chunk_seconds:.0f} s cut in silences, batches of "
                f"{plan.batch_size} on {plan.workers} model worker(s) at once; peak memory "
                "stays flat with length",
            )
        )
    out.append(
        Suggestion(
            "beam_size",
            GPU_BEAM if hardware.has_cuda else CPU_BEAM,
            "a beam is cheap on a GPU"
            if hardware.has_cuda
            else f"a beam of {CPU_BEAM}: as accurate as faster-whisper's beam of 5, on clean and "
            "noisy speech, in less time; 1 (greedy) is fastest",
        )
    )
    if provider == "local":
        threads = max(hardware.cores, 1)
        out.append(
            Suggestion(
                "local_llm_instances",
                1,
                "two instances sharing the cores were no faster (measured); twice the memory",
            )
        )
        out.append(Suggestion("local_llm_threads", threads, f"{hardware.cores} cores"))
        out.append(
            Suggestion("max_concurrent_llm", 2, "keeps the instance busy between calls (1.07x)")
        )
        if hardware.available_mb < 4_000:
            out.append(
                Suggestion(
                    "local_model",
                    "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                    f"{hardware.available_mb} MB free is tight for a 3B model",
                )
            )
        return out
    preset = PRESETS.get(provider)
    concurrency = preset.max_concurrent if preset else 8
    concurrency = min(concurrency, calls)
    reason = (
        f"{count_of(calls, 'call')} ({count_of(sections, 'section')} + "
        f"{count_of(hours, 'hour')}); the preset's limit"
    )
    rpm = preset.requests_per_minute if preset else None
    tpm = preset.tokens_per_minute if preset else None
    if tpm:
        minutes = calls * TOKENS_PER_SECTION / tpm
        reason += f"; {tpm:.0f} tokens a minute make this about {minutes:.0f} min at best"
    out.append(Suggestion("max_concurrent_llm", concurrency, reason))
    if rpm or tpm:
        out.append(Suggestion("requests_per_minute", rpm, "the free tier's limit, paced evenly"))
        out.append(Suggestion("tokens_per_minute", tpm, "requests larger than this are refused"))
    out.append(
        Suggestion(
            "request_timeout",
            120 if duration < 3 * 3600 else 180,
            "long prompts of long videos take longer to answer",
        )
    )
    out.append(
        Suggestion(
            "retry_max_attempts",
            5 if calls > 40 else 3,
            f"{count_of(calls, 'call')}: more of them meet a transient error",
        )
    )
    return out


def endpoint_name(settings: Settings) -> str:
    """The provider a suggestion is for (a profile counts as a generic endpoint)."""
    if settings.llm_provider in ("local", *PRESETS):
        return settings.llm_provider
    return llm_endpoint(settings, environ={}).name


def effective_defaults(settings: Settings) -> dict[str, str]:
    """What an unset key amounts to for these settings on this machine: ``config show``
    prints it beside the key, so that "unset" never hides the value a run would use."""
    import platformdirs

    from yttl.config import library_path
    from yttl.factory import max_concurrent_videos
    from yttl.llm.local import DEFAULT_MODEL_FILE, DEFAULT_MODEL_REPO

    shown: dict[str, str] = {
        "summary_language": "the transcript's language",
        "beam_size": f"{CPU_BEAM} on a CPU, {GPU_BEAM} on a GPU",
        "request_timeout": "120 s a chat call (600 s an upload), growing with each retry",
        "cache_dir": platformdirs.user_cache_dir("yttl"),
        "library_path": str(library_path(settings)),
        "memory_limit_mb": "from this machine's free memory",
        "chunk_seconds": "from this machine's hardware (--chunk-strategy)",
        "max_concurrent_whisper": "from this machine's hardware",
        "local_model_repo": DEFAULT_MODEL_REPO,
        "local_model_file": DEFAULT_MODEL_FILE,
        "openai_whisper_model": "the provider's (whisper-1, whisper-large-v3)",
        "fallback_provider": "none",
    }
    with contextlib.suppress(YttlError):
        shown["max_concurrent_llm"] = str(max_concurrent_llm(settings))
    with contextlib.suppress(YttlError, OSError):
        shown["max_concurrent_videos"] = f"{max_concurrent_videos(settings, 1000)} on this machine"
    if settings.llm_provider != "local":
        with contextlib.suppress(YttlError):
            endpoint = endpoint_for(settings, settings.llm_provider)
            shown["context_tokens"] = str(endpoint.context_tokens)
            shown["requests_per_minute"] = str(endpoint.requests_per_minute or "no pacing")
            shown["tokens_per_minute"] = str(endpoint.tokens_per_minute or "no pacing")
    else:
        shown["context_tokens"] = "the local model's window"
        shown["requests_per_minute"] = shown["tokens_per_minute"] = "no pacing"
    openai = PRESETS["openai"]
    shown["openai_model"], shown["openai_base_url"] = openai.model, openai.base_url
    return shown
