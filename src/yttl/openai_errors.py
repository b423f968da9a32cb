"""The ``openai`` SDK's exceptions in yttl's error categories (DESIGN §7).

Chat (``yttl.llm``), transcription (``yttl.transcribe``) and embeddings all call
OpenAI-compatible endpoints through the one SDK, so its errors are translated here, below
all of them, once.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math

import openai

from yttl.errors import (
    AuthError,
    BadResponseError,
    ContextLengthError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    ProviderStartingError,
    RateLimitError,
    RequestRefusedError,
    ServerError,
)

__all__ = ["translate_error"]


def _retry_after(response: object) -> float | None:
    """The seconds ``Retry-After`` asks for: a number or an HTTP date (RFC 9110); None
    when it is missing or garbage ("nan", "-5", "soon"), never a pause no clock can reach."""
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max((when - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_CONTEXT_CODES = {
    "context_length_exceeded",  # OpenAI
    "request_too_large",
    "string_above_max_length",
    "exceed_context_size_error",  # llama.cpp server
}


def _error_code(exc: openai.APIStatusError) -> str | None:
    """The machine-readable ``error.code`` (or ``type``) of an OpenAI-style error body."""
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            value = error.get("code") or error.get("type")
            return str(value) if value else None
    return None


def _loading(exc: openai.APIStatusError) -> bool:
    """llama.cpp's server while it loads: 503 ``{"error": {"message": "Loading model"}}``."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else None
    return "loading model" in str(message or exc.message).lower()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def translate_error(
    exc: Exception, provider: str, model: str | None = None, secret: str | None = None
) -> ProviderError:
    """Map an ``openai`` SDK exception onto yttl's error categories (DESIGN §7); the
    provider's text goes into outputs, so the key is taken out of it."""
    error = _translate(exc, provider, model)
    if secret and len(secret) >= 8 and secret in error.message:
        error.message = error.message.replace(secret, "***")
        error.args = (error.message,)
    return error


def _translate(exc: Exception, provider: str, model: str | None) -> ProviderError:
    where = f"{provider}: "
    if isinstance(exc, openai.APITimeoutError):
        return NetworkError(where + "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return NetworkError(
            where + f"cannot connect ({_first_line(str(exc.__cause__ or exc))})", unreached=True
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthError(
            where + f"the API key was refused (HTTP {exc.status_code})",
            hint="check the key in the environment variable for this provider",
        )
    if isinstance(exc, openai.RateLimitError):
        return RateLimitError(
            where + "rate limited (HTTP 429)", retry_after=_retry_after(exc.response)
        )
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, _error_code(exc)
        if status == 503 and (_loading(exc) or _retry_after(exc.response) is not None):
            return ProviderStartingError(
                where
                + "the server is starting: "
                + ("it is loading the model" if _loading(exc) else "it asks to retry later")
                + " (HTTP 503)",
                retry_after=None if _loading(exc) else _retry_after(exc.response),
            )
        if status >= 500:
            return ServerError(where + f"server error (HTTP {status})", status=status)
        if status == 413 or code in _CONTEXT_CODES:
            return ContextLengthError(where + f"request too large (HTTP {status})")
        if code == "model_not_found" or (status == 404 and "model" in exc.message.lower()):
            named = f" {model!r}" if model else " by this name"
            return ModelNotFoundError(
                where + f"the provider has no model{named} (HTTP {status}): "
                f"{_first_line(exc.message)}",
                hint="check the model name (-om, --NAME-model or the profile's model)",
            )
        return RequestRefusedError(
            where + f"request refused (HTTP {status}): {_first_line(exc.message)}"
        )
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return BadResponseError(where + "the response was not a valid chat completion")
    return ProviderError(where + f"{type(exc).__name__}: {exc}")
