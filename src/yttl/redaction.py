"""Secrets never shown: which names and variables hold them, and text with them masked
(logs, provider messages in outputs, ``config show``)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from yttl.config import Profile, Settings

__all__ = ["is_secret_name", "known_secrets", "redact", "redacted"]

_SECRET_NAME = re.compile(r"(^|_)(api_key|key|token|secret|password)$", re.IGNORECASE)
_SECRET_VARIABLE = re.compile(r"(_API_KEY|_TOKEN|_SECRET|_PASSWORD)$")


def is_secret_name(name: str) -> bool:
    """``api_key``, ``hf_token``...: yes; ``max_output_tokens``, ``api_key_env``: no."""
    return bool(_SECRET_NAME.search(name))


def known_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret the settings and the environment hold: keys of profiles from the
    config file, and every ``*_API_KEY`` / ``*_TOKEN`` variable (whichever is in use)."""
    environ = os.environ if environ is None else environ
    found = [v for k, v in environ.items() if _SECRET_VARIABLE.search(k.upper()) and v]
    found += [p.api_key for p in settings.profiles.values() if p.api_key]
    found += [k for k in (settings.openai_api_key, settings.groq_api_key, settings.hf_token) if k]
    return sorted({s for s in found if len(s) >= 8}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def redacted(name: str, value: Any) -> Any:
    if value and is_secret_name(name):
        return "***"
    if isinstance(value, Profile):
        return {k: redacted(k, v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, dict):
        return {k: redacted(k, v) for k, v in value.items()}
    return value
