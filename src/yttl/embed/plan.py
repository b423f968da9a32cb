"""``SearchPlan``: how a search or a question is answered, and why, decided as far as it
can be without a query vector. Light on purpose: ``yttl search`` by words imports neither
numpy nor the provider stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yttl.embed.base import Vectors

__all__ = ["SearchPlan", "plan_by_words"]


@dataclass(frozen=True)
class SearchPlan:
    """How a search or a question is answered, and why: the CLI says it in one line."""

    mode: str  # words | meaning | hybrid
    why: str
    vector: Vectors | None = None
    model: str | None = None


def plan_by_words(mode: str | None, models: list[str]) -> SearchPlan | None:
    """The plan when no query vector is wanted or could be used (``mode`` words, or the
    library has no vectors: ``models`` are those it has); None when one is needed."""
    if mode == "words":
        return SearchPlan("words", "by words (--mode words)")
    if not models:
        why = "no vectors yet" if mode is None else f"no vectors to search by {mode}"
        return SearchPlan("words", f"by words only: the library has {why} "
                          "(yttl library reindex embeds it)")  # fmt: skip
    return None
