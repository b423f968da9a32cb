"""Local GGUF models through llama-cpp-python (the ``local`` extra)."""

from __future__ import annotations

from yttl.config import Settings
from yttl.errors import MissingDependencyError
from yttl.llm.base import LLMProvider

__all__ = ["build_local_provider"]


def build_local_provider(settings: Settings) -> LLMProvider:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "the local LLM provider needs llama-cpp-python",
            hint="pip install 'yttl[local]', or choose a provider with -lp openai|groq|...",
        ) from exc
    raise MissingDependencyError(
        "the local LLM provider is not available in this version",
        hint="choose an OpenAI-compatible provider with -lp openai|groq|chatgpt|huggingchat",
    )
