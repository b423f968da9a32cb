"""The one place that turns ``Settings`` into concrete providers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from yttl.cache import ResultsCache
from yttl.config import Settings
from yttl.errors import UsageError
from yttl.llm.base import LLMProvider
from yttl.llm.openai_compat import PRESETS, OpenAICompatibleProvider
from yttl.perf import PerformanceTracker
from yttl.resilience import CircuitBreaker, Pacer, RetryManager, RetryPolicy
from yttl.transcribe.api import ApiTranscriber
from yttl.transcribe.base import Transcriber
from yttl.transcribe.chunking import ChunkOptimizer, Hardware, probe_hardware
from yttl.transcribe.local import FasterWhisperTranscriber, SilenceOptions

__all__ = [
    "LLMEndpoint",
    "build_cache",
    "build_call_policy",
    "build_llm",
    "build_transcriber",
    "llm_endpoint",
    "max_concurrent_llm",
    "whisper_endpoint",
]

DEFAULT_PROFILE_CONTEXT = 32_000
DEFAULT_PROFILE_CONCURRENCY = 8
LOCAL_CONCURRENCY = 2  # keeps the local worker fed: 1.07x over 1 (measured, Gemma 270M)
DEFAULT_WHISPER_UPLOADS = 4


@dataclass(frozen=True)
class LLMEndpoint:
    """An OpenAI-compatible endpoint resolved from a preset or a profile."""

    name: str
    base_url: str
    model: str
    api_key_env: str
    api_key: str | None
    context_tokens: int
    max_concurrent: int
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


def llm_endpoint(settings: Settings, environ: Mapping[str, str] | None = None) -> LLMEndpoint:
    return _endpoint(settings, settings.llm_provider, environ)


def _endpoint(
    settings: Settings, name: str, environ: Mapping[str, str] | None = None
) -> LLMEndpoint:
    environ = os.environ if environ is None else environ
    if name in settings.profiles:
        profile = settings.profiles[name]
        if not profile.base_url or not profile.model:
            raise UsageError(
                f"profile {name!r} needs a base URL and a model",
                hint=f"pass --{name}-base-url and --{name}-model, or set them in the config",
            )
        return LLMEndpoint(
            name,
            profile.base_url,
            profile.model,
            profile.key_env,
            profile.api_key or environ.get(profile.key_env),
            settings.context_tokens or profile.context_tokens or DEFAULT_PROFILE_CONTEXT,
            profile.max_concurrent or DEFAULT_PROFILE_CONCURRENCY,
        )
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(["local", *PRESETS, *settings.profiles])
        raise UsageError(f"unknown LLM provider {name!r}; choose from {known}")
    return LLMEndpoint(
        name,
        settings.openai_base_url or preset.base_url,
        settings.openai_model or preset.model,
        preset.api_key_env,
        environ.get(preset.api_key_env),
        settings.context_tokens or preset.context_tokens,
        preset.max_concurrent,
        preset.requests_per_minute,
        preset.tokens_per_minute,
    )


def max_concurrent_llm(settings: Settings, environ: Mapping[str, str] | None = None) -> int:
    """The flag or config value, else the provider's preset default."""
    if settings.sequential:
        return 1
    if settings.max_concurrent_llm is not None:
        return settings.max_concurrent_llm
    if settings.llm_provider == "local":
        return LOCAL_CONCURRENCY
    return llm_endpoint(settings, environ).max_concurrent


def _require_key(endpoint: LLMEndpoint, purpose: str, alternative: str = "") -> str:
    if not endpoint.api_key:
        raise UsageError(
            f"no API key for {purpose}",
            hint=f"set {endpoint.api_key_env} in the environment{alternative}",
        )
    return endpoint.api_key


def build_llm(
    settings: Settings, environ: Mapping[str, str] | None = None, name: str | None = None
) -> LLMProvider:
    """The provider for a run (``name`` overrides ``llm_provider``, for the fallback);
    a missing key is an error here, before any work starts."""
    name = name or settings.llm_provider
    if name == "local":
        from yttl.llm.local import build_local_provider

        return build_local_provider(settings)
    endpoint = _endpoint(settings, name, environ)
    return OpenAICompatibleProvider(
        name=endpoint.name,
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=_require_key(endpoint, f"the {endpoint.name} provider"),
        context_tokens=endpoint.context_tokens,
        # The retry policy gives each attempt its own, growing timeout; the SDK's is only
        # a ceiling above the last attempt's, or it would cut every retry short.
        timeout=(settings.request_timeout or 120.0) * 1.5**settings.retry_max_attempts,
    )


def whisper_endpoint(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[LLMEndpoint, str]:
    """The endpoint and model for API transcription (``-wp openai|groq|PROFILE``)."""
    endpoint = _endpoint(settings, settings.whisper_provider, environ)
    if settings.openai_whisper_model:
        return endpoint, settings.openai_whisper_model
    profile = settings.profiles.get(settings.whisper_provider)
    if profile is not None:
        return endpoint, profile.whisper_model or "whisper-1"
    return endpoint, PRESETS[settings.whisper_provider].whisper_model


def build_transcriber(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    hardware: Hardware | None = None,
) -> Transcriber:
    """faster-whisper for ``-wp local``, else an OpenAI-compatible transcription API."""
    if settings.whisper_provider == "local":
        plan = ChunkOptimizer(hardware or probe_hardware(), settings.memory_limit_mb).plan(
            settings.chunk_strategy,
            model=settings.local_whisper_model,
            chunk_seconds=settings.chunk_seconds,
            beam_size=settings.beam_size,
        )
        silence = SilenceOptions(
            settings.vad, settings.silence_threshold_db, settings.min_silence_seconds
        )
        root = Path(settings.cache_dir or platformdirs.user_cache_dir("yttl")) / "whisper"
        return FasterWhisperTranscriber(
            settings.local_whisper_model, plan, language=settings.language, silence=silence,
            download_root=str(root),
        )  # fmt: skip
    endpoint, model = whisper_endpoint(settings, environ)
    return ApiTranscriber(
        provider=endpoint.name,
        base_url=endpoint.base_url,
        api_key=_require_key(endpoint, f"transcription with {endpoint.name}", ", or use -wp local"),
        model=model,
        language=settings.language,
        upload_limit_mb=settings.whisper_upload_limit_mb,
        max_concurrent=settings.max_concurrent_whisper or DEFAULT_WHISPER_UPLOADS,
        timeout=settings.request_timeout or 600.0,
        silence_threshold_db=settings.silence_threshold_db,
        min_silence_seconds=settings.min_silence_seconds,
    )


def build_call_policy(
    settings: Settings,
    provider: LLMProvider,
    tracker: PerformanceTracker,
    environ: Mapping[str, str] | None = None,
) -> RetryManager:
    """Retries, timeouts, pacing and a circuit breaker for one provider."""
    rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
    if provider.name != "local":
        endpoint = _endpoint(settings, provider.name, environ)
        rpm = rpm or endpoint.requests_per_minute
        tpm = tpm or endpoint.tokens_per_minute
    timeout = settings.request_timeout or (None if provider.name == "local" else 120.0)
    return RetryManager(
        RetryPolicy(settings.retry_max_attempts, settings.retry_base_delay, timeout=timeout),
        breaker=CircuitBreaker(
            provider.name, settings.breaker_threshold, settings.breaker_cooldown
        ),
        pacer=Pacer(rpm, tpm),
        tracker=tracker,
    )


def build_cache(settings: Settings) -> ResultsCache:
    if not settings.cache:
        return ResultsCache(None)
    root = Path(settings.cache_dir or platformdirs.user_cache_dir("yttl"))
    return ResultsCache(root / "results.sqlite")
