"""Which OpenAI-compatible endpoint, model and key serve a purpose: a preset (OpenAI,
Groq, ...) or a profile from the config, with the key from the environment or the config."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from yttl.config import Settings
from yttl.errors import UsageError
from yttl.llm.presets import PRESETS

__all__ = ["NO_KEY", "LLMEndpoint", "endpoint_for", "is_local_endpoint", "llm_endpoint",
           "require_key", "whisper_endpoint"]  # fmt: skip

DEFAULT_PROFILE_CONTEXT = 32_000
DEFAULT_PROFILE_CONCURRENCY = 8


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
    return endpoint_for(settings, settings.llm_provider, environ)


def endpoint_for(
    settings: Settings,
    name: str,
    environ: Mapping[str, str] | None = None,
    *,
    needs_model: bool = True,
) -> LLMEndpoint:
    """``needs_model``: a chat model is asked for; embeddings need only a profile's
    ``base_url`` (and its ``embed_model``)."""
    environ = os.environ if environ is None else environ
    if name in settings.profiles:
        profile = settings.profiles[name]
        if not profile.base_url and not needs_model:
            raise UsageError(
                f"profile {name!r} needs a base URL for its embeddings",
                hint=f"set base_url in [profiles.{name}] of the config, or pass --{name}-base-url",
            )  # fmt: skip
        if not profile.base_url or (needs_model and not profile.model):
            raise UsageError(
                f"profile {name!r} needs a base URL and a model",
                hint=f"pass --{name}-base-url and --{name}-model, or set them in the config",
            )
        return LLMEndpoint(
            name,
            profile.base_url,
            profile.model or "",
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
        # -ou and -om belong to the openai provider only: never sent to Groq or a profile
        (settings.openai_base_url if name == "openai" else None) or preset.base_url,
        (settings.openai_model if name == "openai" else None) or preset.model,
        preset.api_key_env,
        environ.get(preset.api_key_env) or _configured_key(settings, preset.api_key_env),
        settings.context_tokens or preset.context_tokens,
        preset.max_concurrent,
        preset.requests_per_minute,
        preset.tokens_per_minute,
    )


def _configured_key(settings: Settings, variable: str) -> str | None:
    """A preset's key from the config file (``openai_api_key``, ``groq_api_key``,
    ``hf_token``), when the environment has none."""
    value = getattr(settings, variable.lower(), None)
    return value if isinstance(value, str) and value else None


def is_local_endpoint(base_url: str) -> bool:
    """Loopback or a private network: llama.cpp's server, Ollama, LM Studio, vLLM at home
    need no key."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith((".local", ".localhost")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


NO_KEY = "no-key-needed"  # the SDK insists on a key; a local server ignores it


def require_key(endpoint: LLMEndpoint, purpose: str, alternative: str = "") -> str:
    if not endpoint.api_key and is_local_endpoint(endpoint.base_url):
        return NO_KEY
    if not endpoint.api_key:
        raise UsageError(
            f"no API key for {purpose}",
            hint=f"set {endpoint.api_key_env} in the environment{alternative}",
        )
    return endpoint.api_key


def whisper_endpoint(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[LLMEndpoint, str]:
    """The endpoint and model for API transcription (``-wp openai|groq|PROFILE``)."""
    endpoint = endpoint_for(settings, settings.whisper_provider, environ)
    if settings.openai_whisper_model:
        return endpoint, settings.openai_whisper_model
    profile = settings.profiles.get(settings.whisper_provider)
    if profile is not None:
        return endpoint, profile.whisper_model or "whisper-1"
    return endpoint, PRESETS[settings.whisper_provider].whisper_model
