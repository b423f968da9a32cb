"""Any OpenAI-compatible chat endpoint, through the official SDK's ``AsyncOpenAI``.

One client per run; the SDK's own retries are off because retry policy belongs to the
engine. SDK exceptions are translated into yttl's error categories here, once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletion

from yttl.errors import (
    AuthError,
    BadResponseError,
    ContextLengthError,
    ModelNotFoundError,
    NetworkError,
    ProviderError,
    RateLimitError,
    RequestRefusedError,
    ServerError,
)
from yttl.llm.base import Completion, Message

__all__ = ["PRESETS", "OpenAICompatibleProvider", "ProviderPreset", "translate_error"]


@dataclass(frozen=True)
class ProviderPreset:
    """Defaults for a known endpoint. ``context_tokens`` is the largest request to send,
    which for rate-limited free tiers is the tokens-per-minute budget, not the model's window.
    """

    name: str
    base_url: str
    model: str
    api_key_env: str
    context_tokens: int
    max_concurrent: int
    whisper_model: str = "whisper-1"
    requests_per_minute: float | None = None  # client-side pacing, when the tier is known
    tokens_per_minute: float | None = None


PRESETS: dict[str, ProviderPreset] = {
    "openai": ProviderPreset(
        "openai", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY", 128_000, 16
    ),
    # ChatGPT models through the official API (the original tool scraped the web app).
    "chatgpt": ProviderPreset(
        "chatgpt", "https://api.openai.com/v1", "gpt-4o", "OPENAI_API_KEY", 128_000, 8
    ),
    # Groq's free tier allows 30 requests and 6,000 tokens a minute: a request larger than
    # that is refused as "request too large", so the budget, not the window, bounds it.
    "groq": ProviderPreset(
        "groq",
        "https://api.groq.com/openai/v1",
        "llama-3.1-8b-instant",
        "GROQ_API_KEY",
        6_000,
        4,
        whisper_model="whisper-large-v3",
        requests_per_minute=30,
        tokens_per_minute=6_000,
    ),
    "huggingchat": ProviderPreset(
        "huggingchat",
        "https://router.huggingface.co/v1",
        "meta-llama/Llama-3.1-8B-Instruct",
        "HF_TOKEN",
        32_000,
        4,
    ),
}


def _retry_after(response: object) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def translate_error(exc: Exception, provider: str, model: str | None = None,
                    secret: str | None = None) -> ProviderError:  # fmt: skip
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
        return NetworkError(where + f"cannot connect ({exc.__cause__ or exc})")
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
        if status >= 500:
            return ServerError(where + f"server error (HTTP {status})")
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


class OpenAICompatibleProvider:
    """Chat completions from an OpenAI-compatible ``base_url``."""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        base_url: str,
        api_key: str,
        context_tokens: int,
        timeout: float = 120.0,
        temperature: float = 0.3,
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.context_tokens = context_tokens
        self._temperature = temperature
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    async def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                max_tokens=max_tokens,
                temperature=self._temperature,
            )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise translate_error(exc, self.name, self.model, self._api_key) from exc
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise BadResponseError(f"{self.name}: the response has no choices")
        text = response.choices[0].message.content
        if text is None or not text.strip():
            raise BadResponseError(f"{self.name}: the response has no text")
        usage = response.usage
        return Completion(
            text=text.strip(),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        await self._client.close()
