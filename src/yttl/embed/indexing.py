"""Embedding the library: each video as it is recorded (off the critical path: its
outputs are written first), and ``yttl library reindex`` for what has no vectors, or
vectors of another model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from yttl.embed.base import Embedder, Vectors
from yttl.embed.plan import SearchPlan, plan_by_words
from yttl.errors import YttlError
from yttl.library import Library
from yttl.library.vectors import windows_of
from yttl.messages import not_embedded

__all__ = ["EmbedderHolder", "SearchPlan", "embed_query", "embed_video", "query_vector",
           "reindex"]  # fmt: skip

logger = logging.getLogger(__name__)


async def embed_video(library: Library, embedder: Embedder, video_id: str) -> int:
    """Embed one video's windows and summaries; how many vectors it got."""
    document = await asyncio.to_thread(library.document, video_id)
    segments = await asyncio.to_thread(library.transcript, video_id)
    windows = windows_of(document, segments)
    if not windows:
        return 0
    vectors = await embedder.embed([w.text for w in windows], "passage")
    await asyncio.to_thread(library.store_vectors, video_id, embedder.name, windows, vectors)
    return len(windows)


async def reindex(library: Library, embedder: Embedder,
                  progress: Callable[[int, int, str], None] | None = None) -> int:  # fmt: skip
    """Embed every video without vectors of ``embedder``'s model; how many were."""
    waiting = await asyncio.to_thread(library.unembedded, embedder.name)
    for done, video_id in enumerate(waiting, start=1):
        await embed_video(library, embedder, video_id)
        if progress is not None:
            progress(done, len(waiting), video_id)
    return len(waiting)


async def embed_query(embedder: Embedder, query: str) -> Vectors:
    vectors = await embedder.embed([query], "query")
    row: Vectors = vectors[0]
    return row


class EmbedderHolder:
    """One embedder for a process, built off the loop the first time it is asked for
    (a local model loads), shared by every run; a build that fails is said once, in one
    line with what to do, and not tried again: search by words still works."""

    def __init__(self, build: Callable[[], Embedder | None],
                 name: str | None = None) -> None:  # fmt: skip
        self._build = build
        self.name = name  # the name its vectors will have, when known before building
        self._lock = asyncio.Lock()
        self._embedder: Embedder | None = None
        self._tried = False
        self.error: YttlError | None = None

    async def get(self) -> Embedder | None:
        async with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    self._embedder = await asyncio.to_thread(self._build)
                except YttlError as exc:
                    self.error = exc
                    logger.warning("%s", not_embedded(exc))
        return self._embedder

    async def aclose(self) -> None:
        if self._embedder is not None:
            await self._embedder.aclose()


async def query_vector(library: Library, holder: EmbedderHolder | None, query: str,
                       mode: str | None) -> SearchPlan:  # fmt: skip
    """By meaning and words when the library has vectors of the configured embedder's
    model (``mode`` None: hybrid when it can), else by words, saying why. The embedder
    (and the SDK or model behind it) is built only when a query vector is needed."""
    models = [] if mode == "words" else await asyncio.to_thread(library.vector_models)
    plan = plan_by_words(mode, models)
    if plan is not None:
        return plan
    if holder is None:
        return SearchPlan("words", "by words only: no embedder here")
    if holder.name is not None and holder.name not in models:  # known without building it
        return _other_model(models, holder.name)
    embedder = await holder.get()
    if embedder is None:
        why = holder.error.message if holder.error else "embeddings are off"
        return SearchPlan("words", f"by words only: cannot embed the query ({why})")
    if embedder.name not in models:
        return _other_model(models, embedder.name)
    wanted = mode or "hybrid"
    how = "by meaning" if wanted == "meaning" else "by words and meaning"
    return SearchPlan(wanted, f"{how} ({embedder.name})", await embed_query(embedder, query),
                      embedder.name)  # fmt: skip


def _other_model(models: list[str], name: str) -> SearchPlan:
    return SearchPlan("words", f"by words only: the library's vectors are {models[0]}'s, "
                      f"not {name}'s (yttl library reindex embeds it again)")  # fmt: skip
