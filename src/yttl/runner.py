"""The main command: sources in, a batch through one scheduler, outputs and the index out.

Called by the CLI with merged settings; it prints what a run is worth (one line a video,
errors in one or two lines) and returns the exit code. Nothing here parses arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import sys
import time
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.traceback import Traceback

from yttl.batch import EXIT_INTERRUPTED, VideoOutcome, Writer, worst_exit
from yttl.cli import print_error
from yttl.config import Settings
from yttl.models import RunResult

if TYPE_CHECKING:
    from yttl.display import BatchDisplay
    from yttl.library import Library
    from yttl.sources.playlists import BatchEntry

__all__ = ["run_command", "save_video"]

logger = logging.getLogger("yttl")


def _summary_line(result: RunResult, written: Sequence[Path]) -> str:
    sections = [s for h in result.hours for s in h.sections]
    failed = [s for s in sections if s.status == "failed"]
    stats = result.stats
    parts = [f"wrote {', '.join(str(p) for p in written)}"]
    if sections:
        parts.append(f"{len(sections) - len(failed)}/{len(sections)} sections")
        parts.append(
            f"{stats.get('llm_calls', 0)} LLM calls in {stats.get('llm_phase_seconds', 0)} s "
            f"(max {stats.get('max_in_flight', 0)} in flight)"
        )
    if result.failures:
        parts.append(f"{len(result.failures)} failed ({_failure_kinds(result)})")
    return "; ".join(parts)


def _interrupted_line(written: Sequence[Path]) -> str:
    if not written:
        return "yttl: interrupted"
    return (f"yttl: interrupted; wrote what was finished to {', '.join(map(str, written))}; "
            "run the same command to finish")  # fmt: skip


def run_command(sources: Sequence[str], settings: Settings, console: Console) -> int:
    from yttl.batch import run_batch
    from yttl.display import BatchDisplay
    from yttl.factory import build_components, max_concurrent_videos, ytdlp_options
    from yttl.render import check_writable
    from yttl.sources.playlists import PlaylistSelection, expand_sources

    selection = PlaylistSelection(settings.playlist_items, settings.max_videos, settings.dateafter)
    selection.date_floor()  # a bad date is a usage error now, not after the playlist is read
    output_dir = Path(settings.output_dir)
    display_on = not settings.quiet and console.is_terminal

    async def run() -> tuple[list[VideoOutcome], bool]:
        from yttl.aio import blocking

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        main = asyncio.current_task()

        def on_interrupt() -> None:
            if stop.is_set() and main is not None:
                main.cancel()  # a second Ctrl-C: stop now
                return
            stop.set()
            console.print("yttl: stopping; finishing the calls in flight (Ctrl-C again to "
                          "quit now)", highlight=False)  # fmt: skip

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        # Keys, then the output folder, then the sources: what can fail is found before any
        # work is paid for. Building may download a local model: Ctrl-C must reach it.
        components = await blocking(functools.partial(build_components, settings, stop=stop),
                                    stop=stop, name="yttl-build")  # fmt: skip
        try:
            check_writable(output_dir)
            ytdlp = ytdlp_options(settings)
            entries, is_batch = await blocking(expand_sources, sources, ytdlp, selection,
                                               stop=stop, name="yttl-expand")  # fmt: skip
        except BaseException:
            await components.aclose()
            raise
        videos = max_concurrent_videos(settings, len(entries))

        library: Library | None = None
        if settings.library:
            from yttl.config import library_path
            from yttl.library import Library

            library = await asyncio.to_thread(Library, library_path(settings))

        async def write(result: RunResult) -> list[Path]:
            return await asyncio.to_thread(save_video, result, settings, library)

        try:
            with BatchDisplay(console, display_on, len(entries)) as display:
                if settings.executor == "ray":
                    outcomes = await _run_on_ray(entries, settings, stop, videos, write, display)
                else:
                    outcomes = await run_batch(
                        entries, components, write=write, observer=display,
                        max_concurrent_videos=videos, keep_transcripts=False,
                    )  # fmt: skip
            return outcomes, is_batch
        finally:
            await components.aclose()

    from yttl.errors import RunInterrupted

    try:
        outcomes, is_batch = asyncio.run(run())
    except RunInterrupted:
        console.print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    for outcome in outcomes:
        _report(outcome, settings, console, batch=is_batch)
    if is_batch:
        from yttl.render import atomic_write
        from yttl.render.index import index_html, index_json

        atomic_write(output_dir / "index.json", index_json(outcomes, output_dir))
        atomic_write(output_dir / "index.html", index_html(outcomes, output_dir))
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if not settings.quiet:
            summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            console.print(
                f"yttl: {len(outcomes)} videos: {summary}; index: {output_dir / 'index.html'}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
    code = worst_exit([o.exit_code for o in outcomes])
    opened = output_dir / "index.html" if is_batch else next(
        (p for o in outcomes for p in o.outputs if p.suffix == ".html"), None
    )  # fmt: skip
    wants_open = settings.open if settings.open is not None else sys.stdout.isatty()
    if opened is not None and wants_open and not settings.transcript_only and code != 130:
        webbrowser.open(opened.resolve().as_uri())
    return code


async def _run_on_ray(
    entries: Sequence[BatchEntry],
    settings: Settings,
    stop: asyncio.Event,
    videos: int,
    write: Writer,
    display: BatchDisplay,
) -> list[VideoOutcome]:
    from yttl.distributed import RayExecutor

    executor = RayExecutor(settings, settings.ray_address)
    try:
        return await executor.run(entries, stop=stop, max_concurrent_videos=videos, write=write,
                                  observer=display)  # fmt: skip
    finally:
        logger.debug("budget actor: %s", executor.budget_stats)
        await asyncio.to_thread(executor.shutdown)


def _report(outcome: VideoOutcome, settings: Settings, console: Console, *, batch: bool) -> None:
    """The lines a video's end is worth: its error, or what was written and how it went."""
    prefix = f"{outcome.entry.label}: " if batch else ""
    result = outcome.result
    if outcome.status == "interrupted":
        line = _interrupted_line(outcome.outputs)
        console.print(line.replace("yttl: ", f"yttl: {prefix}", 1), highlight=False,
                      soft_wrap=True)  # fmt: skip
        return
    if outcome.error is not None:
        if settings.verbose and outcome.error.__traceback__ is not None:
            console.print(Traceback.from_exception(type(outcome.error), outcome.error,
                                                   outcome.error.__traceback__))  # fmt: skip
        print_error(console, outcome.error, prefix)
        return
    if result is None:
        return
    if settings.report:
        from yttl.perf import report_table

        console.print(report_table(result.stats))
    if settings.report_json:
        from yttl.render import atomic_write

        atomic_write(Path(settings.report_json), json.dumps(result.stats, indent=2) + "\n")
    if outcome.status == "failed":
        console.print(f"yttl: error: {prefix}no section could be summarized "
                      f"({_failure_kinds(result)}); wrote {', '.join(map(str, outcome.outputs))}",
                      highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    elif not settings.quiet:
        console.print(prefix + _summary_line(result, outcome.outputs), highlight=False,
                      soft_wrap=True, markup=False)  # fmt: skip


def _failure_kinds(result: RunResult) -> str:
    return ", ".join(sorted({f.category.replace("_", " ") for f in result.failures}))


def save_video(result: RunResult, settings: Settings, library: Library | None) -> list[Path]:
    """Write a finished video's outputs and record it in the library (an interrupted one
    is written, not recorded); the time each took goes into its stats for the report."""
    from yttl.render import TRANSCRIPT_FORMATS, write_outputs

    formats = list(settings.format)
    if settings.transcript_only:
        formats = [f for f in formats if f in TRANSCRIPT_FORMATS] or ["txt"]
    started = time.perf_counter()
    paths = write_outputs(result, formats, Path(settings.output_dir))
    phases = result.stats.setdefault("phase_seconds", {})
    if isinstance(phases, dict):  # for --report and --report-json, written after
        phases["render"] = round(time.perf_counter() - started, 3)
    if library is not None and not result.interrupted:
        started = time.perf_counter()
        library.record(result, paths)
        if isinstance(phases, dict):
            phases["library"] = round(time.perf_counter() - started, 3)
    return paths
