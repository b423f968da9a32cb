"""``build_embedder``: the embedder that settings name, or None (``--no-embed``). Which
model that is, for a library, is decided in ``yttl.embed.names``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from yttl.config import Settings
from yttl.embed.names import (
    DEFAULT_OPENAI_EMBED_MODEL,
    configured,
    embed_model_name,
    embed_provider_name,
)
from yttl.endpoints import endpoint_for, require_key

if TYPE_CHECKING:
    from yttl.embed.base import Embedder
    from yttl.embed.indexing import EmbedderHolder

__all__ = [
    "DEFAULT_OPENAI_EMBED_MODEL",
    "build_embedder",
    "embed_model_name",
    "embed_provider_name",
    "embedder_holder",
    "embedder_name",
]


def embedder_name(settings: Settings) -> str | None:
    """The name the configured embedder gives its vectors, known without building it
    (no model loads, no SDK is imported); None for a hub pattern not yet resolved."""
    model = configured(settings)
    return model.name if model is not None else None


def build_embedder(settings: Settings, environ: Mapping[str, str] | None = None) -> Embedder | None:
    if not settings.embed:
        return None
    provider, model = embed_provider_name(settings), embed_model_name(settings)
    if provider == "local":
        from yttl.embed.local_embed import LocalEmbedder, local_model_file

        return LocalEmbedder(
            local_model_file(model, settings.cache_dir),
            spec=model,
            threads=settings.local_llm_threads,
        )
    from yttl.embed.openai_embed import OpenAIEmbedder

    wanted = configured(settings)
    assert wanted is not None  # an endpoint's name is always known
    endpoint = endpoint_for(settings, provider, environ, needs_model=False)
    return OpenAIEmbedder(
        provider=endpoint.name,
        model=model or DEFAULT_OPENAI_EMBED_MODEL,
        base_url=endpoint.base_url,
        name=wanted.name,
        api_key=require_key(endpoint, f"embeddings from {endpoint.name}", ", or --no-embed"),
    )


def embedder_holder(settings: Settings, environ: Mapping[str, str] | None = None) -> EmbedderHolder:
    """The process's embedder for a library, built when first needed (a run, ``serve``,
    MCP and the library commands share it)."""
    from yttl.embed.indexing import EmbedderHolder

    return EmbedderHolder(settings, environ)
