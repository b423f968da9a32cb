"""Embedding the library: each video as it is recorded (off the critical path: its
outputs are written first), ``yttl library import`` (what it took in) and ``yttl library
reindex`` (what has no vectors of the library's model, or older ones); and the query
vector of a search, which never makes a search fail: without it, search goes by words."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from yttl.aio import blocking
from yttl.config import Settings
from yttl.embed.base import Embedder, Vectors
from yttl.embed.names import Choice, for_library, mismatch
from yttl.embed.plan import SearchPlan, plan_by_words
from yttl.errors import RunInterrupted, YttlError
from yttl.library import Library
from yttl.library.model import EmbedModel
from yttl.library.vectors import windows_of
from yttl.messages import not_embedded

__all__ = ["EmbedderHolder", "SearchPlan", "embed_query", "embed_video", "query_vector", "reindex"]

logger = logging.getLogger(__name__)

RETRY_AFTER = 30.0  # seconds before a failed build is tried again, doubling ...
RETRY_AFTER_MAX = 900.0  # ... up to this: a server gets its embedder back when it can
QUERY_DEADLINE = 10.0  # seconds a search waits for its query vector before going by words


async def embed_video(library: Library, embedder: Embedder, video_id: str) -> int:
    """Embed one video's windows and summaries; how many vectors it got."""
    document = await asyncio.to_thread(library.document, video_id)
    segments = await asyncio.to_thread(library.transcript, video_id)
    windows = windows_of(document, segments)
    if not windows:
        return 0
    vectors = await embedder.embed([w.text for w in windows], "passage")
    await asyncio.to_thread(library.store_vectors, video_id, embedder.identity, windows, vectors)
    return len(windows)


async def reindex(
    library: Library,
    embedder: Embedder,
    progress: Callable[[int, int, str], None] | None = None,
    among: Sequence[str] | None = None,
) -> int:
    """Embed every video (of ``among``, else the library) without vectors of
    ``embedder``'s model or with older ones; how many were."""
    waiting = await asyncio.to_thread(library.unembedded, embedder.name, among)
    for done, video_id in enumerate(waiting, start=1):
        await embed_video(library, embedder, video_id)
        if progress is not None:
            progress(done, len(waiting), video_id)
    return len(waiting)


async def embed_query(embedder: Embedder, query: str) -> Vectors:
    vectors = await embedder.embed([query], "query")
    row: Vectors = vectors[0]
    return row


@dataclass
class _Failure:
    retry_at: float
    count: int
    why: str


class EmbedderHolder:
    """The embedders of a process (a run, ``serve``, MCP, a library command), each built
    off the loop the first time it is asked for, in a thread Ctrl-C does not wait for.
    Which model is the library's choice (``yttl.embed.names.for_library``); one that
    cannot be built is tried again after a while (30 s, doubling to 15 min), not on
    every request; ``why`` says, in one line, why there was none."""

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        build: Callable[[Settings], Embedder | None] | None = None,
    ) -> None:
        from yttl.embed.factory import build_embedder

        self.settings = settings
        self._build = build or functools.partial(_build, build_embedder, environ)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._built: dict[tuple[str | None, str | None], Embedder | None] = {}
        self._failed: dict[tuple[str | None, str | None], _Failure] = {}
        self._said: set[str] = set()
        self.why: str | None = None

    def choice(self, recorded: EmbedModel | None, *, query: bool = False) -> Choice:
        """For a query, the library's own model whatever is configured (its vectors are
        the ones to compare with); for vectors to keep, ``for_library``."""
        settings = self.settings
        if query and recorded is not None:
            settings = _unnamed(settings)
        return for_library(settings, recorded, query=query)

    async def get(
        self, recorded: EmbedModel | None, *, query: bool = False, stop: asyncio.Event | None = None
    ) -> Embedder | None:
        """The embedder of the library whose model is ``recorded``, or None (``why``)."""
        choice = self.choice(recorded, query=query)
        if choice.settings is None:
            self.why = choice.why
            return None
        settings = choice.settings
        key = (settings.embed_provider, settings.embed_model)
        async with self._lock:
            if key not in self._built:
                failed = self._failed.get(key)
                if failed is not None and self._clock() < failed.retry_at:
                    self.why = failed.why
                    return None
                try:
                    embedder = await blocking(
                        self._build, settings, stop=stop, name="yttl-embedder"
                    )
                except RunInterrupted:
                    raise
                except YttlError as exc:
                    count = failed.count + 1 if failed is not None else 1
                    wait = min(RETRY_AFTER * 2 ** (count - 1), RETRY_AFTER_MAX)
                    why = not_embedded(exc)
                    self._failed[key] = _Failure(self._clock() + wait, count, why)
                    self.why = why
                    return None
                self._failed.pop(key, None)
                self._built[key] = embedder
        embedder = self._built[key]
        if embedder is None:
            self.why = "embeddings are off"
        elif recorded is not None and embedder.name != recorded.name:
            self.why = mismatch(recorded, embedder.identity)  # a hub pattern, found
            return None
        return embedder

    def first_time(self, why: str) -> bool:
        """Whether ``why`` is news (said once a process, not once a video)."""
        if why in self._said:
            return False
        self._said.add(why)
        return True

    async def aclose(self) -> None:
        for embedder in self._built.values():
            if embedder is not None:
                await embedder.aclose()


def _build(
    build: Callable[[Settings, Mapping[str, str] | None], Embedder | None],
    environ: Mapping[str, str] | None,
    settings: Settings,
) -> Embedder | None:
    return build(settings, environ)


def _unnamed(settings: Settings) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, embed_provider=None, embed_model=None)


async def query_vector(
    library: Library, holder: EmbedderHolder | None, query: str, mode: str | None
) -> SearchPlan:
    """By meaning and words when the library has vectors of its model (``mode`` None:
    hybrid when it can), else by words, saying why in one line. The embedder (and the
    SDK or model behind it) is built only when a query vector is needed; an embedder
    that cannot be had or does not answer makes the search go by words, never fail."""
    if not query.strip():  # nothing to embed: an empty text is no question
        return SearchPlan("words", "by words: the query is empty")
    models = [] if mode == "words" else await asyncio.to_thread(library.vector_models)
    plan = plan_by_words(mode, models)
    if plan is not None:
        return plan
    if holder is None:
        return SearchPlan("words", "by words only: no embedder here")
    recorded = await asyncio.to_thread(library.embed_model)
    if recorded is None or recorded.name not in models:
        name = recorded.name if recorded else "its model"
        return SearchPlan(
            "words",
            f"by words only: the library has no vectors of {name} "
            "yet (yttl library reindex embeds it)",
        )
    embedder = await holder.get(recorded, query=True)
    if embedder is None:
        return SearchPlan("words", f"by words only: cannot embed the query ({holder.why})")
    try:
        vector = await asyncio.wait_for(embed_query(embedder, query), QUERY_DEADLINE)
    except TimeoutError:  # a hanging endpoint: the words answer now, not in minutes
        return SearchPlan(
            "words",
            f"by words only: {embedder.name} did not embed the query within {QUERY_DEADLINE:g} s",
        )
    except Exception as exc:  # whatever the embedder met, the words still answer
        why = exc.message if isinstance(exc, YttlError) else type(exc).__name__
        return SearchPlan(
            "words", f"by words only: {embedder.name} did not embed the query ({why})"
        )
    wanted = mode or "hybrid"
    how = "by meaning" if wanted == "meaning" else "by words and meaning"
    missing = await asyncio.to_thread(library.uncovered, embedder.name)
    note = (
        (
            f"; {missing} video(s) have no vectors of it, found by words only (yttl "
            "library reindex embeds them)"
        )
        if missing
        else ""
    )
    return SearchPlan(wanted, f"{how} ({embedder.name}){note}", vector, embedder.name)
