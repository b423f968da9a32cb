"""Language-model providers behind :class:`yttl.llm.base.LLMProvider`."""

from yttl.llm.base import Completion, LLMProvider, Message

__all__ = ["Completion", "LLMProvider", "Message"]
