"""Runs sources through the engine and records them: the layer every face shares.

The CLI (``yttl.cli.runner``), ``yttl mcp`` and ``yttl serve`` all come here to turn sources
into videos (playlists and batch files expanded), run them through one scheduler, write
each video's outputs as it ends, record it in the library, and write a batch's index.
What a face shows of it comes through a ``BatchObserver`` that the face implements;
nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from yttl.batch import BatchObserver, VideoOutcome, Writer
from yttl.config import Settings
from yttl.models import RunResult

if TYPE_CHECKING:
    from yttl.embed.indexing import EmbedderHolder
    from yttl.factory import RunComponents
    from yttl.library import Library
    from yttl.sources.playlists import BatchEntry

__all__ = [
    "BatchRun",
    "check_sources",
    "local_sources_exist",
    "run_sources",
    "save_video",
    "write_index",
]

logger = logging.getLogger(__name__)

ObserverFactory = Callable[[int], AbstractContextManager[BatchObserver]]
"""Given how many videos there are, the observer that hears of them for the run."""


@dataclass
class BatchRun:
    """What became of a set of sources."""

    outcomes: list[VideoOutcome]
    is_batch: bool
    output_dir: Path
    index_error: OSError | None = None  # the index could not be written

    @property
    def index(self) -> Path:
        return self.output_dir / "index.html"


def save_video(result: RunResult, settings: Settings, library: Library | None) -> list[Path]:
    """Write a finished video's outputs and record it in the library (an interrupted one
    is written, not recorded); the time each took goes into its stats for the report."""
    from yttl.render import TRANSCRIPT_FORMATS, output_path, write_outputs

    output_dir = Path(settings.output_dir)
    formats = list(settings.format)
    kept: list[Path] = []
    if settings.transcript_only:
        formats = [f for f in formats if f in TRANSCRIPT_FORMATS] or ["txt"]
    elif result.failures and not result.summarized:
        # No summary (the provider failed): the transcript is the work. A summary an
        # earlier run wrote in the same place is never replaced by this poorer one.
        earlier = {f: output_path(result.video.id, f, output_dir) for f in formats}
        kept = [p for f, p in earlier.items() if f not in TRANSCRIPT_FORMATS and p.is_file()]
        formats = [f for f in formats if earlier[f] not in kept]
        if not {"html", *TRANSCRIPT_FORMATS} & set(formats):
            formats.append("txt")
        for path in kept:
            logger.warning("kept %s from an earlier run: this one summarized nothing", path)
    started = time.perf_counter()
    paths = [*write_outputs(result, formats, output_dir), *kept]
    phases = result.stats.setdefault("phase_seconds", {})
    if isinstance(phases, dict):  # for --report and --report-json, written after
        phases["render"] = round(time.perf_counter() - started, 3)
    if library is not None and not result.interrupted:
        started = time.perf_counter()
        library.record(result, paths)
        if isinstance(phases, dict):
            phases["library"] = round(time.perf_counter() - started, 3)
    return paths


def write_index(outcomes: Sequence[VideoOutcome], output_dir: Path) -> None:
    from yttl.render import atomic_write
    from yttl.render.index import index_html, index_json

    atomic_write(output_dir / "index.json", index_json(outcomes, output_dir))
    atomic_write(output_dir / "index.html", index_html(outcomes, output_dir))


def local_sources_exist(sources: Sequence[str]) -> None:
    """A single source that names a missing file is an input error now, before a model is
    loaded or fetched; in a batch such an entry fails alone, as any bad entry does."""
    from yttl.errors import InputError
    from yttl.sources import missing_file

    path = missing_file(sources[0]) if len(sources) == 1 else None
    if path is not None:
        raise InputError(f"no such file: {path}", hint="give a URL, a media file or an info.json")


def check_sources(sources: Sequence[str]) -> None:
    """A single source that is a malformed URL, a missing file or a file that is no media
    is an input error (exit 2) before any model is looked up or fetched; in a batch such
    an entry fails alone. Blocking (it probes a file): run it in a thread."""
    from yttl.sources import check_source

    local_sources_exist(sources)
    if len(sources) == 1:
        check_source(sources[0])


@contextlib.contextmanager
def _no_observer(count: int) -> Iterator[BatchObserver | None]:
    yield None


async def run_sources(
    sources: Sequence[str],
    settings: Settings,
    *,
    stop: asyncio.Event,
    observe: ObserverFactory | None = None,
    components: RunComponents | None = None,
) -> BatchRun:
    """Every video of ``sources`` through one scheduler, each written and recorded as it
    ends; a batch (several videos, a playlist) also gets its index. ``components`` shared
    by the caller (a server's jobs) are left open; ones built here are closed."""
    from yttl.aio import blocking
    from yttl.batch import run_batch
    from yttl.factory import build_components, max_concurrent_videos, ytdlp_options
    from yttl.render import check_writable
    from yttl.sources.playlists import PlaylistSelection, expand_sources

    selection = PlaylistSelection(settings.playlist_items, settings.max_videos, settings.dateafter)
    selection.date_floor()  # a bad date is a usage error now, not after the playlist is read
    output_dir = Path(settings.output_dir)
    await asyncio.to_thread(check_sources, sources)
    own = components is None
    # A source that is bad on its face, then keys, then the output folder, then the
    # sources: what can fail is found before any work is paid for (or any model looked
    # up). Building may download a local model: Ctrl-C must reach it.
    if components is None:
        components = await blocking(
            functools.partial(build_components, settings, stop=stop), stop=stop, name="yttl-build"
        )
    try:
        check_writable(output_dir)
        entries, is_batch = await blocking(
            expand_sources,
            sources,
            ytdlp_options(settings),
            selection,
            stop=stop,
            name="yttl-expand",
        )
        videos = max_concurrent_videos(settings, len(entries))
        library: Library | None = None
        if settings.library:
            from yttl.config import library_path
            from yttl.library import Library

            library = await asyncio.to_thread(Library, library_path(settings))

        embedding: list[asyncio.Task[None]] = []
        one_at_a_time = asyncio.Semaphore(1)  # a local model wants the cores to itself

        async def write(result: RunResult) -> list[Path]:
            paths = await asyncio.to_thread(save_video, result, settings, library)
            if (
                library is not None
                and settings.embed
                and not settings.transcript_only  # asked for text alone: reindex embeds it
                and not result.interrupted
                and components.embeddings is not None
            ):
                after = _embed_after(
                    library, components.embeddings, result.video.id, one_at_a_time, stop
                )
                embedding.append(asyncio.create_task(after))
            return paths

        with (observe or _no_observer)(len(entries)) as observer:
            if settings.executor == "ray":
                outcomes = await _run_on_ray(entries, settings, stop, videos, write, observer)
            else:
                outcomes = await run_batch(
                    entries,
                    components,
                    write=write,
                    observer=observer,
                    max_concurrent_videos=videos,
                    keep_transcripts=False,
                )
        if embedding:  # outputs are written; the library learns what they mean
            await asyncio.gather(*embedding)
    finally:
        if own:
            await components.aclose()
    run = BatchRun(outcomes, is_batch, output_dir)
    if is_batch:
        try:
            await asyncio.to_thread(write_index, outcomes, output_dir)
        except OSError as exc:
            run.index_error = exc
    return run


async def _embed_after(
    library: Library,
    holder: EmbedderHolder,
    video_id: str,
    turn: asyncio.Semaphore,
    stop: asyncio.Event,
) -> None:
    """Embed a recorded video with the library's model; one that is not embedded is said
    once a run, in one line (search by words still finds it, and ``yttl library
    reindex`` embeds it later). Ctrl-C does not wait for a model download."""
    from yttl.embed.indexing import embed_video
    from yttl.errors import RunInterrupted, YttlError
    from yttl.messages import not_embedded

    async with turn:
        if stop.is_set():
            return
        recorded = await asyncio.to_thread(library.embed_model)
        try:
            embedder = await holder.get(recorded, stop=stop)
        except RunInterrupted:
            return
        if embedder is None:
            if holder.why and holder.first_time(holder.why):
                logger.warning("%s", holder.why)
            return
        try:
            if await asyncio.to_thread(library.unembedded, embedder.name, [video_id]):
                # not when nothing changed; and Ctrl-C does not wait for a slow endpoint
                embedding = asyncio.ensure_future(embed_video(library, embedder, video_id))
                stopped = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait([embedding, stopped], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopped.cancel()
                if not embedding.done():
                    embedding.cancel()
                    logger.warning(
                        "%s: not embedded (interrupted); yttl library reindex will", video_id
                    )
                    return
                embedding.result()
        except YttlError as exc:
            logger.warning("%s", not_embedded(exc, video_id))


async def _run_on_ray(
    entries: Sequence[BatchEntry],
    settings: Settings,
    stop: asyncio.Event,
    videos: int,
    write: Writer,
    observer: BatchObserver | None,
) -> list[VideoOutcome]:
    from yttl.batch import silent_observer
    from yttl.distributed import RayExecutor

    executor = RayExecutor(settings, settings.ray_address)
    try:
        return await executor.run(
            entries,
            stop=stop,
            max_concurrent_videos=videos,
            write=write,
            observer=observer or silent_observer(),
        )
    finally:
        logger.debug("budget actor: %s", executor.budget_stats)
        await asyncio.to_thread(executor.shutdown)
