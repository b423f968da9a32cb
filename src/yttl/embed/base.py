"""The embedder seam: texts in, unit vectors out, for a query or for passages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from yttl.library.model import EmbedModel

__all__ = ["Embedder", "EmbeddingKind", "Vectors", "normalized"]

EmbeddingKind = Literal["query", "passage"]
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """``name`` says which model made a vector: a query is embedded by the same one, and
    a library whose vectors another model made is embedded again."""

    name: str
    identity: EmbedModel  # how the library records it

    async def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> Vectors:
        """One row per text, each of length 1."""
        ...

    async def aclose(self) -> None: ...


def normalized(rows: npt.ArrayLike) -> Vectors:
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
