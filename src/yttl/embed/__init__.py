"""Embeddings: text as vectors, for search by meaning. ``Embedder`` is the seam; an
OpenAI-compatible endpoint (``/v1/embeddings``, with ``input_type``) and a local GGUF model
(llama-cpp-python) stand behind it; ``build_embedder`` picks one from settings."""

from __future__ import annotations

from yttl.embed.base import Embedder, EmbeddingKind
from yttl.embed.factory import build_embedder

__all__ = ["Embedder", "EmbeddingKind", "build_embedder"]
