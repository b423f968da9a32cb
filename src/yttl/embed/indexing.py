"""Embedding the library: each video as it is recorded (off the critical path: its
outputs are written first), and ``yttl library reindex`` for what has no vectors, or
vectors of another model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from yttl.embed.base import Embedder, Vectors
from yttl.errors import YttlError
from yttl.library import Library
from yttl.library.vectors import windows_of

__all__ = ["EmbedderHolder", "embed_query", "embed_video", "query_vector", "reindex"]

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
    (a local model loads), shared by every run; a build that fails is said once and not
    tried again: search by words still works."""

    def __init__(self, build: Callable[[], Embedder | None]) -> None:
        self._build = build
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
                    logger.warning("no embeddings (search by words only): %s", exc.message)
        return self._embedder

    async def aclose(self) -> None:
        if self._embedder is not None:
            await self._embedder.aclose()


async def query_vector(library: Library, holder: EmbedderHolder | None, query: str,
                       mode: str | None) -> tuple[str, Vectors | None, str | None]:  # fmt: skip
    """(mode, the query's vector, its model) for a search or a question: by meaning and
    words when the library has vectors of the configured embedder's model, else by words
    (``mode`` None: hybrid when it can)."""
    models = await asyncio.to_thread(library.vector_models)
    wanted = mode or ("hybrid" if models else "words")
    if wanted == "words" or not models or holder is None:
        return "words", None, None
    embedder = await holder.get()
    if embedder is None or embedder.name not in models:
        logger.warning("the library's vectors were made by %s, not %s: searching by words "
                       "(yttl library reindex embeds it again)", models[0],
                       embedder.name if embedder else "no embedder")  # fmt: skip
        return "words", None, None
    return wanted, await embed_query(embedder, query), embedder.name
