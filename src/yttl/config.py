"""Settings: defaults < config file < environment (``YTTL_*``) < command-line flags.

Every value remembers where it came from, for ``yttl config show``. The original tool's
JSON file (``~/.config/yttl.json``) is read when no TOML file exists.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from yttl.errors import ConfigError

__all__ = [
    "Profile",
    "Settings",
    "config_path",
    "legacy_config_path",
    "load_settings",
    "parse_value",
]

logger = logging.getLogger(__name__)

FORMATS = ("html", "md", "json", "txt", "srt", "vtt")
SECRET_WORDS = ("key", "token", "secret", "password")


@dataclass(frozen=True)
class Profile:
    """Another OpenAI-compatible endpoint, from ``[profiles.NAME]`` or ``-aop NAME``."""

    name: str
    base_url: str | None = None
    model: str | None = None
    whisper_model: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    context_tokens: int | None = None
    max_concurrent: int | None = None

    @property
    def key_env(self) -> str:
        return self.api_key_env or f"{self.name.upper().replace('-', '_')}_API_KEY"


@dataclass(frozen=True)
class Settings:
    # sources and transcript
    language: str = "en"
    cookies: str | None = None
    cookies_from_browser: str | None = None
    yt_dlp_options: dict[str, Any] = field(default_factory=dict)
    force_local_transcribe: bool = False
    sponsorblock: tuple[str, ...] = ()
    sponsorblock_api: str = "https://sponsor.ajay.app"
    sections: str = "fixed"
    # summarization
    llm_provider: str = "local"
    openai_model: str | None = None
    openai_base_url: str | None = None
    context_tokens: int | None = None
    max_output_tokens: int = 512
    max_concurrent_llm: int | None = None
    sequential: bool = False
    local_model_repo: str | None = None
    local_model_file: str | None = None
    local_model_path: str | None = None
    local_llm_instances: int | None = None
    local_llm_threads: int | None = None
    # transcription
    whisper_provider: str = "local"
    local_whisper_model: str = "base.en"
    openai_whisper_model: str | None = None  # else the provider's (whisper-1, whisper-large-v3)
    whisper_upload_limit_mb: float = 25.0
    max_concurrent_whisper: int | None = None
    chunk_strategy: str = "adaptive"
    chunk_seconds: float | None = None
    beam_size: int | None = None  # whisper beam; 1 (greedy) on CPU, 5 on GPU
    vad: bool = True
    silence_threshold_db: float = -40.0
    min_silence_seconds: float = 2.0
    memory_limit_mb: int | None = None
    # resilience
    retry_max_attempts: int = 3
    retry_base_delay: float = 1.0
    request_timeout: float | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    fallback_provider: str | None = None
    breaker_window: int = 20
    breaker_min_calls: int = 10
    breaker_failure_rate: float = 0.7
    breaker_cooldown: float = 5.0
    breaker_deadline: float = 60.0
    cache: bool = True
    cache_dir: str | None = None
    # batches
    max_concurrent_videos: int | None = None
    playlist_items: str | None = None
    max_videos: int | None = None
    dateafter: str | None = None
    executor: str = "local"
    ray_address: str | None = None
    # output
    output_dir: str = "out"
    format: tuple[str, ...] = ("html",)
    transcript_only: bool = False
    open: bool | None = None
    report: bool = False
    report_json: str | None = None
    verbose: bool = False
    quiet: bool = False
    profiles: dict[str, Profile] = field(default_factory=dict)

    def validate(self) -> Settings:
        if self.sections not in ("fixed", "chapters"):
            raise ConfigError(f"sections must be 'fixed' or 'chapters', not {self.sections!r}")
        if self.chunk_strategy not in ("adaptive", "fixed", "memory_optimized"):
            raise ConfigError(f"unknown chunk strategy {self.chunk_strategy!r}")
        unknown = [f for f in self.format if f not in FORMATS]
        if unknown:
            raise ConfigError(
                f"unknown output format {unknown[0]!r}; choose from {', '.join(FORMATS)}"
            )
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"executor must be 'local' or 'ray', not {self.executor!r}")
        for name in ("max_concurrent_llm", "max_concurrent_whisper", "retry_max_attempts",
                     "max_concurrent_videos", "max_videos", "breaker_window",
                     "breaker_min_calls"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, not {value}")
        for name in ("breaker_cooldown", "breaker_deadline", "request_timeout",
                     "requests_per_minute", "tokens_per_minute", "chunk_seconds"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be above 0, not {value}")
        if not 0 < self.breaker_failure_rate <= 1:
            raise ConfigError("breaker-failure-rate must be above 0 and at most 1")
        if self.retry_base_delay < 0:
            raise ConfigError(f"retry-base-delay must not be negative, not {self.retry_base_delay}")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_HINTS = typing.get_type_hints(Settings)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or platformdirs.user_config_dir(roaming=True)
    return Path(base) / "yttl" / "config.toml"


def legacy_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "yttl.json"


def _base_type(hint: Any) -> tuple[Any, bool]:
    """The non-None type of a hint, and whether None is allowed."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def parse_value(name: str, raw: Any, origin: str) -> Any:
    """Coerce ``raw`` (a TOML/JSON value or an environment string) to the field's type."""
    hint, optional = _base_type(_HINTS[name])
    origin_type = typing.get_origin(hint) or hint
    try:
        if raw is None or (optional and isinstance(raw, str) and raw.strip() == ""):
            if not optional:
                raise ValueError("a value is required")
            return None
        if origin_type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if origin_type is int:
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return int(raw)
        if origin_type is float:
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return float(raw)
        if origin_type is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if origin_type is dict:
            if isinstance(raw, str):
                return dict(parse_assignment(part) for part in raw.split(",") if part.strip())
            if not isinstance(raw, dict):
                raise ValueError("expected a table")
            return dict(raw)
        if not isinstance(raw, str):
            raise ValueError("expected text")
        return raw
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: invalid value {raw!r} for {name}: {exc}") from exc


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it is JSON (numbers, true, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _profiles(raw: Any, origin: str) -> dict[str, Profile]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: 'profiles' must be a table of tables")
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    result = {}
    for name, table in raw.items():
        if not isinstance(table, dict) or set(table) - known:
            extra = sorted(set(table) - known) if isinstance(table, dict) else []
            raise ConfigError(f"{origin}: profile {name!r} has unknown keys {extra}")
        result[name] = Profile(name=name, **table)
    return result


def _read_file(path: Path, *, legacy: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
        data: Any = json.loads(text) if legacy else tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of settings")
    return data


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Merge every layer; returns the settings and, per key, where its value came from."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {name: "default" for name in _FIELDS}

    explicit = config_file is not None
    path = config_file or config_path(environ)
    layers: list[tuple[str, dict[str, Any]]] = []
    if path.is_file():
        layers.append((str(path), _read_file(path, legacy=False)))
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    elif legacy_config_path(environ).is_file():
        legacy = legacy_config_path(environ)
        layers.append((str(legacy), _read_file(legacy, legacy=True)))

    for origin, data in layers:
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name == "profiles":
                values["profiles"] = _profiles(raw, origin)
            elif name in _FIELDS:
                values[name] = parse_value(name, raw, origin)
            else:
                logger.warning("%s: unknown setting %r is ignored", origin, key)
                continue
            origins[name] = origin

    for name in _FIELDS:
        env_name = f"YTTL_{name.upper()}"
        if name != "profiles" and env_name in environ:
            values[name] = parse_value(name, environ[env_name], env_name)
            origins[name] = f"env {env_name}"

    for name, raw in (flags or {}).items():
        if name == "profiles":
            merged = dict(values.get("profiles", {}))
            merged.update(raw)
            values["profiles"] = merged
            origins[name] = "command line"
        elif raw is not None:
            values[name] = raw
            origins[name] = "command line"
    return Settings(**values).validate(), origins


def redacted(name: str, value: Any) -> Any:
    if value and any(word in name.lower() for word in SECRET_WORDS) and "env" not in name:
        return "***"
    if isinstance(value, Profile):
        return {k: redacted(k, v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, dict):
        return {k: redacted(k, v) for k, v in value.items()}
    return value
