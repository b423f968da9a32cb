"""The one narrow seam every language model sits behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Completion", "LLMProvider", "Message"]


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMProvider(Protocol):
    """An async chat model. Implementations raise ``yttl.errors.ProviderError`` subclasses.

    ``complete`` may be awaited many times at once; the engine bounds how many. Retries are
    the engine's business, not the provider's.
    """

    name: str
    model: str
    context_tokens: int

    async def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion: ...

    async def aclose(self) -> None: ...
