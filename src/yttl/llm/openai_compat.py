"""Any OpenAI-compatible chat endpoint, through the official SDK's ``AsyncOpenAI``.

One client per run; the SDK's own retries are off because retry policy belongs to the
engine. SDK exceptions are translated by ``yttl.openai_errors``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import openai
from openai.types.chat import ChatCompletion

from yttl.errors import BadResponseError, NetworkError
from yttl.llm.base import Completion, Message, TextSink
from yttl.llm.presets import PRESETS, ProviderPreset
from yttl.openai_errors import translate_error

__all__ = ["PRESETS", "OpenAICompatibleProvider", "ProviderPreset"]


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

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int, on_text: TextSink
    ) -> Completion:
        """The answer as server-sent chunks (``stream=True``): each piece goes to
        ``on_text`` as it comes. A stream that breaks off after it began is a network
        failure of an endpoint that did answer, not an answer and not "cannot connect"."""
        pieces: list[str] = []
        try:
            stream = await self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                max_tokens=max_tokens,
                temperature=self._temperature,
                stream=True,
            )
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise translate_error(exc, self.name, self.model, self._api_key) from exc
        if not isinstance(stream, openai.AsyncStream):
            raise BadResponseError(f"{self.name}: the response is not a stream")
        try:
            async with stream:
                async for chunk in stream:
                    piece = chunk.choices[0].delta.content if chunk.choices else None
                    if piece:
                        pieces.append(piece)
                        on_text(piece)
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise NetworkError(
                f"{self.name}: the answer's stream broke off after {len(pieces)} piece(s)",
                status=200,
            ) from exc
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise translate_error(exc, self.name, self.model, self._api_key) from exc
        text = "".join(pieces)
        if not text.strip():
            raise BadResponseError(f"{self.name}: the streamed response has no text")
        return Completion(text=text.strip(), completion_tokens=len(pieces))

    async def aclose(self) -> None:
        await self._client.close()
