"""Embeddings: text as vectors, for search by meaning. ``Embedder`` is the seam; an
OpenAI-compatible endpoint (``/v1/embeddings``, with ``input_type``) and a local GGUF model
(llama-cpp-python) stand behind it; ``build_embedder`` picks one from settings.

Names are imported on first use: the library, which only stores and scans vectors, must
not pay for the provider stack (the openai SDK) that only making a vector needs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yttl.embed.base import Embedder as Embedder
    from yttl.embed.base import EmbeddingKind as EmbeddingKind
    from yttl.embed.factory import build_embedder as build_embedder

_WHERE = {"Embedder": "yttl.embed.base", "EmbeddingKind": "yttl.embed.base",
          "build_embedder": "yttl.embed.factory"}  # fmt: skip

__all__ = ["Embedder", "EmbeddingKind", "build_embedder"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'yttl.embed' has no attribute {name!r}")
