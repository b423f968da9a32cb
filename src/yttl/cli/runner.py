"""The main command's face on the terminal: progress, one line a video, the exit code.

Called by the CLI with merged settings; the work is ``yttl.jobs.run_sources`` (shared with
``yttl mcp`` and ``yttl serve``); this prints what a run is worth (errors in one or two
lines) and handles Ctrl-C. Nothing here parses arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
import webbrowser
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.traceback import Traceback

from yttl.batch import EXIT_FAILED, EXIT_INTERRUPTED, VideoOutcome, worst_exit
from yttl.config import Settings
from yttl.exitcodes import exit_now
from yttl.jobs import BatchRun, save_video
from yttl.messages import count_of, print_error
from yttl.models import RunResult

__all__ = ["interrupt_exits", "run_command", "save_video"]

logger = logging.getLogger("yttl")


def _summary_line(result: RunResult, written: Sequence[Path]) -> str:
    sections = [s for h in result.hours for s in h.sections]
    failed = [s for s in sections if s.status == "failed"]
    stats = result.stats
    parts = [f"wrote {', '.join(str(p) for p in written)}"]
    if sections:
        calls = stats.get("llm_calls", 0)
        parts.append(f"{len(sections) - len(failed)}/{len(sections)} sections")
        parts.append(
            f"{count_of(calls if isinstance(calls, int) else 0, 'LLM call')} in "
            f"{stats.get('llm_phase_seconds', 0)} s "
            f"(max {stats.get('max_in_flight', 0)} in flight)"
        )
    if result.failures:
        parts.append(f"{len(result.failures)} failed ({_failure_kinds(result)})")
    return "; ".join(parts)


def _interrupted_line(written: Sequence[Path]) -> str:
    if not written:
        return "yttl: interrupted"
    return (
        f"yttl: interrupted; wrote what was finished to {', '.join(map(str, written))}; "
        "run the same command to finish"
    )


def run_command(sources: Sequence[str], settings: Settings, console: Console) -> int:
    from yttl.cli.display import BatchDisplay
    from yttl.errors import RunInterrupted
    from yttl.jobs import run_sources

    display_on = not settings.quiet and console.is_terminal

    async def run() -> BatchRun:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        main = asyncio.current_task()
        presses = 0

        def on_interrupt() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                stop.set()
                console.print(
                    "yttl: stopping; finishing the calls in flight (Ctrl-C again to quit now)",
                    highlight=False,
                )
            elif presses == 2 and main is not None:
                main.cancel()  # stop now: what is finished is still written
            else:
                exit_now()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        return await run_sources(
            sources,
            settings,
            stop=stop,
            observe=lambda count: BatchDisplay(console, display_on, count),
        )

    try:
        batch = asyncio.run(run())
    except (RunInterrupted, asyncio.CancelledError):
        console.print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    with interrupt_exits():
        return _finish(batch, settings, console)


def _finish(batch: BatchRun, settings: Settings, console: Console) -> int:
    outcomes, output_dir = batch.outcomes, batch.output_dir
    for outcome in outcomes:
        _report(outcome, settings, console, batch=batch.is_batch)
    if batch.is_batch:
        if batch.index_error is not None:
            console.print(
                f"yttl: error: cannot write the index in {output_dir}: "
                f"{batch.index_error.strerror or batch.index_error}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if not settings.quiet:
            summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            console.print(
                f"yttl: {count_of(len(outcomes), 'video')}: {summary}; index: {batch.index}",
                highlight=False,
                soft_wrap=True,
            )
    code = worst_exit([o.exit_code for o in outcomes])
    if batch.index_error is not None:
        code = worst_exit([code, EXIT_FAILED])
    opened = (
        batch.index
        if batch.is_batch
        else next((p for o in outcomes for p in o.outputs if p.suffix == ".html"), None)
    )
    wants_open = settings.open if settings.open is not None else sys.stdout.isatty()
    if opened is not None and wants_open and not settings.transcript_only and code != 130:
        webbrowser.open(opened.resolve().as_uri())
    return code


@contextlib.contextmanager
def interrupt_exits() -> Iterator[None]:
    """Ctrl-C while the run is reported: out at once (the outputs are written already)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: exit_now())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(outcome: VideoOutcome, settings: Settings, console: Console, *, batch: bool) -> None:
    """The lines a video's end is worth: its error, or what was written and how it went."""
    prefix = f"{outcome.entry.label}: " if batch else ""
    result = outcome.result
    if outcome.status == "interrupted":
        line = _interrupted_line(outcome.outputs)
        console.print(line.replace("yttl: ", f"yttl: {prefix}", 1), highlight=False, soft_wrap=True)
        return
    if outcome.error is not None:
        if settings.verbose and outcome.error.__traceback__ is not None:
            console.print(
                Traceback.from_exception(
                    type(outcome.error), outcome.error, outcome.error.__traceback__
                )
            )
        print_error(console, outcome.error, prefix)
        if outcome.outputs and result is not None:  # what was made before it: said, kept
            done, total = outcome.sections
            console.print(
                f"yttl: {prefix}wrote what was made to {', '.join(map(str, outcome.outputs))} "
                f"(the transcript; {done}/{total} sections summarized); once that is "
                "fixed, the same command reuses it",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
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
        console.print(
            f"yttl: error: {prefix}no section could be summarized "
            f"({_failure_kinds(result)}); wrote {', '.join(map(str, outcome.outputs))}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    elif not settings.quiet:
        console.print(
            prefix + _summary_line(result, outcome.outputs),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def _failure_kinds(result: RunResult) -> str:
    return ", ".join(sorted({f.category.replace("_", " ") for f in result.failures}))
