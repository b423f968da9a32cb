"""Settings: defaults < config file < environment (``YTTL_*``) < command-line flags.

Every value remembers where it came from, for ``yttl config show``. The original tool's
JSON file (``~/.config/yttl.json``) is read when no TOML file exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yttl.errors import ConfigError

__all__ = [
    "Profile",
    "Settings",
    "config_path",
    "legacy_config_path",
    "library_path",
    "load_settings",
    "parse_value",
    "toml_value",
]

FORMATS = ("html", "md", "json", "txt", "srt", "vtt")


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
    embed_model: str | None = None

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
    slides: bool = False  # find the video's slides, read them, give each section its slides
    # summarization
    llm_provider: str = "local"
    openai_model: str | None = None
    openai_base_url: str | None = None
    context_tokens: int | None = None
    max_output_tokens: int = 512
    summary_language: str | None = None  # a name or code; None: the transcript's
    overview: bool = True  # an overview of videos longer than an hour
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
    beam_size: int | None = None  # whisper beam; 4 on CPU, 5 on GPU
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
    # keys of the built-in presets, when not in the environment (config file only, please)
    openai_api_key: str | None = field(default=None, repr=False)
    groq_api_key: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    breaker_window: int = 20
    breaker_min_calls: int = 10
    breaker_failure_rate: float = 0.7
    breaker_cooldown: float = 5.0
    breaker_deadline: float = 60.0
    cache: bool = True
    cache_dir: str | None = None
    library: bool = True
    library_path: str | None = None
    # batches
    max_concurrent_videos: int | None = None
    playlist_items: str | None = None
    max_videos: int | None = None
    dateafter: str | None = None
    executor: str = "local"
    ray_address: str | None = None
    ray_whisper_gpus: float = 0.0  # GPUs for the Whisper actor on a Ray cluster
    # output
    output_dir: str = "out"
    format: tuple[str, ...] = ("html",)
    transcript_only: bool = False
    open: bool | None = None
    report: bool = False
    report_json: str | None = None
    verbose: bool = False
    quiet: bool = False
    # embeddings (search by meaning)
    embed: bool = True
    embed_provider: str | None = None  # None: the library's model, else the local default
    embed_model: str | None = None
    # yttl serve
    serve_port: int = 8765
    serve_allowed_origins: tuple[str, ...] = ()  # web origins that may call the API (CORS)
    serve_allowed_hosts: tuple[str, ...] = ()  # Host names beside the loopback ones
    serve_max_jobs: int = 4  # jobs running at once; the rest wait in the queue
    profiles: dict[str, Profile] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        """(setting, what is wrong) for every value out of its range."""
        found: list[tuple[str, str]] = []
        choices = {
            "sections": ("fixed", "chapters"),
            "executor": ("local", "ray"),
            "chunk_strategy": ("adaptive", "fixed", "memory_optimized"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                found.append(
                    (name, f"must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
                )
        unknown = [f for f in self.format if f not in FORMATS]
        if unknown:
            found.append(
                (
                    "format",
                    f"unknown output format {unknown[0]!r}; choose from {', '.join(FORMATS)}",
                )
            )
        for name in (
            "max_concurrent_llm",
            "max_concurrent_whisper",
            "retry_max_attempts",
            "max_concurrent_videos",
            "max_videos",
            "breaker_window",
            "breaker_min_calls",
            "context_tokens",
            "max_output_tokens",
            "beam_size",
            "local_llm_instances",
            "local_llm_threads",
            "memory_limit_mb",
            "serve_max_jobs",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                found.append((name, f"must be at least 1, not {value}"))
        for name in (
            "breaker_cooldown",
            "breaker_deadline",
            "request_timeout",
            "requests_per_minute",
            "tokens_per_minute",
            "chunk_seconds",
            "whisper_upload_limit_mb",
            "min_silence_seconds",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                found.append((name, f"must be above 0, not {value}"))
        if not 0 < self.breaker_failure_rate <= 1:
            found.append(("breaker_failure_rate", "must be above 0 and at most 1"))
        if self.ray_whisper_gpus < 0:
            found.append(("ray_whisper_gpus", f"must not be negative, not {self.ray_whisper_gpus}"))
        if not 0 <= self.serve_port <= 65535:
            found.append(("serve_port", f"must be a port from 0 to 65535, not {self.serve_port}"))
        if self.retry_base_delay < 0:
            found.append(("retry_base_delay", f"must not be negative, not {self.retry_base_delay}"))
        return found

    def validate(self, origins: Mapping[str, str] | None = None) -> Settings:
        """The settings, or a ``ConfigError`` naming the first bad value and where it came
        from: the flag, the variable or the config file's key."""
        for name, problem in self.problems():
            raise ConfigError(f"{_where(name, (origins or {}).get(name, 'default'))} {problem}")
        return self


def _where(name: str, origin: str) -> str:
    if origin == "command line":
        return f"--{name.replace('_', '-')}"
    if origin.startswith("env "):
        return origin.removeprefix("env ")
    if origin == "default":
        return name
    return f"{origin}: {name}"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_HINTS = typing.get_type_hints(Settings)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME")
    if not base:
        import platformdirs  # here, not at the top: every command starts through this module

        base = platformdirs.user_config_dir(roaming=True)
    return Path(base) / "yttl" / "config.toml"


def library_path(settings: Settings) -> Path:
    """The library's SQLite file: ``--library-path``, else the user data dir."""
    if settings.library_path:
        return Path(settings.library_path).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("yttl")) / "library.sqlite"


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
    types = {
        "base_url": str,
        "model": str,
        "whisper_model": str,
        "api_key_env": str,
        "embed_model": str,
        "api_key": str,
        "context_tokens": int,
        "max_concurrent": int,
    }
    result = {}
    for name, table in raw.items():
        if not isinstance(table, dict) or set(table) - set(types):
            extra = sorted(set(table) - set(types)) if isinstance(table, dict) else []
            raise ConfigError(f"{origin}: profile {name!r} has unknown keys {extra}")
        for key, value in table.items():
            wanted = types[key]
            if not isinstance(value, wanted) or isinstance(value, bool):
                kind = "a number" if wanted is int else "text"
                raise ConfigError(f"{origin}: profiles.{name}.{key} must be {kind}, not {value!r}")
            if isinstance(value, int) and value < 1:
                raise ConfigError(f"{origin}: profiles.{name}.{key} must be at least 1")
        result[name] = Profile(name=name, **table)
    return result


def _read_file(path: Path, *, legacy: bool) -> dict[str, Any]:
    import tomllib  # only when there is a file to read

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


def _from_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """The original tool's JSON: profiles as ``openai_profile`` (a name or a list of
    names) with flat ``<name>_model``, ``<name>_base_url``, ``<name>_whisper_model`` and
    ``<name>_api_key`` keys. Read into this tool's shape, so an old set-up keeps working."""
    names = data.pop("openai_profile", None) or data.pop("openai_profiles", None) or []
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    profiles = dict(data.pop("profiles", {}) or {})
    for name in names:
        keys = ("model", "base_url", "whisper_model", "api_key")
        table = {key: data.pop(f"{name}_{key}") for key in keys if f"{name}_{key}" in data}
        profiles[name] = {**profiles.get(name, {}), **table}
    if profiles:
        data["profiles"] = profiles
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
        layers.append((str(legacy), _from_legacy(_read_file(legacy, legacy=True))))

    for origin, data in layers:
        for key, raw in data.items():
            name = key.replace("-", "_")
            if name == "profiles":
                values["profiles"] = _profiles(raw, origin)
            elif name in _FIELDS:
                values[name] = parse_value(name, raw, origin)
            else:
                import logging  # here: every command starts through this module

                logging.getLogger(__name__).warning(
                    "%s: unknown setting %r is ignored", origin, key
                )
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
    return Settings(**values).validate(origins), origins


def toml_value(value: Any) -> str:
    """A value as TOML (for ``config show``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
            + " }"
        )
    return json.dumps(str(value))
