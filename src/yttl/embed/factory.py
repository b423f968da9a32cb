"""``build_embedder``: the embedder a run's settings name, or None (``--no-embed``).

Which provider embeds, when the settings do not say (``embed_provider`` unset): the LLM
provider's own endpoint where it has embeddings (OpenAI's API, or a profile with an
``embed_model``), so that a user with a key needs nothing more; else a local model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from yttl.config import Settings
from yttl.endpoints import endpoint_for, require_key

if TYPE_CHECKING:
    from yttl.embed.base import Embedder
    from yttl.embed.indexing import EmbedderHolder

__all__ = ["DEFAULT_OPENAI_EMBED_MODEL", "build_embedder", "embed_model_name",
           "embed_provider_name", "embedder_holder", "embedder_name"]  # fmt: skip

DEFAULT_OPENAI_EMBED_MODEL = "text-embedding-3-small"
OPENAI_EMBEDDINGS = ("openai", "chatgpt")  # presets whose API has /embeddings


def embed_provider_name(settings: Settings) -> str:
    """``--embed-provider``, else the LLM provider when it has embeddings, else local."""
    if settings.embed_provider:
        return settings.embed_provider
    chat = settings.llm_provider
    profile = settings.profiles.get(chat)
    if profile is not None and profile.embed_model and profile.base_url:
        return chat
    if chat in OPENAI_EMBEDDINGS and not settings.openai_base_url:  # -ou: maybe no /embeddings
        return chat
    return "local"


def embed_model_name(settings: Settings) -> str | None:
    """The model of the embedding provider: ``--embed-model``, else a profile's
    ``embed_model``, else the provider's default (None: the local default)."""
    if settings.embed_model:
        return settings.embed_model
    provider = embed_provider_name(settings)
    profile = settings.profiles.get(provider)
    if profile is not None and profile.embed_model:
        return profile.embed_model
    return None if provider == "local" else DEFAULT_OPENAI_EMBED_MODEL


def embedder_name(settings: Settings) -> str | None:
    """The name the configured embedder gives its vectors, known without building it
    (no model loads, no SDK is imported); None for a hub pattern not yet resolved."""
    provider, model = embed_provider_name(settings), embed_model_name(settings)
    if provider != "local":
        return f"{provider}:{model}"
    from yttl.embed.local_embed import DEFAULT_MODEL

    if model is None:
        return f"local:{DEFAULT_MODEL.file}"
    if model.endswith(".gguf") and ":" not in model.split("/")[0]:
        return f"local:{Path(model).name}"
    return None


def build_embedder(settings: Settings, environ: Mapping[str, str] | None = None) -> Embedder | None:
    if not settings.embed:
        return None
    provider, model = embed_provider_name(settings), embed_model_name(settings)
    if provider == "local":
        from yttl.embed.local_embed import LocalEmbedder, local_model_file

        return LocalEmbedder(local_model_file(model, settings.cache_dir),
                             threads=settings.local_llm_threads)  # fmt: skip
    from yttl.embed.openai_embed import OpenAIEmbedder

    endpoint = endpoint_for(settings, provider, environ, needs_model=False)
    return OpenAIEmbedder(
        provider=endpoint.name, model=model or DEFAULT_OPENAI_EMBED_MODEL,
        base_url=endpoint.base_url,
        api_key=require_key(endpoint, f"embeddings from {endpoint.name}", ", or --no-embed"),
    )  # fmt: skip


def embedder_holder(settings: Settings, environ: Mapping[str, str] | None = None) -> EmbedderHolder:
    """The process's embedder for ``settings``, built when first needed, its vectors'
    name known before that: what a run, ``serve``, MCP and the library commands share."""
    import functools

    from yttl.embed.indexing import EmbedderHolder

    return EmbedderHolder(functools.partial(build_embedder, settings, environ),
                          embedder_name(settings))  # fmt: skip
