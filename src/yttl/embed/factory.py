"""``build_embedder``: the embedder a run's settings name, or None (``--no-embed``)."""

from __future__ import annotations

from collections.abc import Mapping

from yttl.config import Settings
from yttl.embed.base import Embedder
from yttl.endpoints import endpoint_for, require_key

__all__ = ["DEFAULT_OPENAI_EMBED_MODEL", "build_embedder", "embed_model_name"]

DEFAULT_OPENAI_EMBED_MODEL = "text-embedding-3-small"


def embed_model_name(settings: Settings) -> str | None:
    """The model of the configured provider: ``--embed-model``, else a profile's
    ``embed_model``, else the provider's default."""
    if settings.embed_model:
        return settings.embed_model
    profile = settings.profiles.get(settings.embed_provider)
    if profile is not None and profile.embed_model:
        return profile.embed_model
    return None if settings.embed_provider == "local" else DEFAULT_OPENAI_EMBED_MODEL


def build_embedder(settings: Settings, environ: Mapping[str, str] | None = None) -> Embedder | None:
    if not settings.embed:
        return None
    model = embed_model_name(settings)
    if settings.embed_provider == "local":
        from yttl.embed.local_embed import LocalEmbedder, local_model_file

        return LocalEmbedder(local_model_file(model, settings.cache_dir),
                             threads=settings.local_llm_threads)  # fmt: skip
    from yttl.embed.openai_embed import OpenAIEmbedder

    endpoint = endpoint_for(settings, settings.embed_provider, environ)
    return OpenAIEmbedder(
        provider=endpoint.name, model=model or DEFAULT_OPENAI_EMBED_MODEL,
        base_url=endpoint.base_url,
        api_key=require_key(endpoint, f"embeddings from {endpoint.name}", ", or --no-embed"),
    )  # fmt: skip
