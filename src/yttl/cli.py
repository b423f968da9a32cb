"""The ``yttl`` command: parse, run the library, print, pick the exit code. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from yttl import __version__
from yttl.config import FORMATS, Profile, Settings, load_settings, parse_assignment
from yttl.errors import ConfigError, InputError, UsageError, YttlError
from yttl.models import RunResult
from yttl.perf import PerformanceTracker

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "exit_code_for", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
logger = logging.getLogger("yttl")


def exit_code_for(exc: BaseException) -> int:
    """The single mapping from errors to exit codes (DESIGN §3)."""
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError | InputError):
        return EXIT_USAGE
    return EXIT_FAILED


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit 2 with usage; keep one line
        raise UsageError(message, hint="see yttl --help")


def _profile_names(argv: Sequence[str]) -> list[str]:
    names = []
    for i, arg in enumerate(argv):
        if arg in ("-aop", "--add-openai-profile") and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif arg.startswith("--add-openai-profile="):
            names.append(arg.split("=", 1)[1])
    return names


def build_parser(profiles: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="yttl",
        description="Summarize a video (URL, media file or yt-dlp info.json), hour by hour "
        "and 5 minutes at a time, with links to each moment.",
        allow_abbrev=False,
    )
    add = p.add_argument
    add("sources", nargs="+", metavar="SOURCE", help="URL, media file or *.info.json")
    add("--version", action="version", version=f"yttl {__version__}")
    add("-o", "--output-dir", help="where outputs go (DIR/<video_id>.<ext>; default ./out)")
    add("-f", "--format", action="append", choices=FORMATS, help="repeatable; default html")
    add("--transcript-only", action="store_true", default=None, help="write the transcript only")
    add("--open", action=argparse.BooleanOptionalAction, default=None,
        help="open the HTML when done (default: only on a terminal)")  # fmt: skip
    add("-lp", "--llm-provider", help="local, openai, groq, chatgpt, huggingchat or a profile")
    add("-om", "--openai-model", help="model of the OpenAI-compatible provider")
    add("-ou", "--openai-base-url", help="base URL of the OpenAI-compatible provider")
    add("-aop", "--add-openai-profile", action="append", metavar="NAME",
        help="another OpenAI-compatible endpoint; adds --NAME-model, --NAME-base-url, "
        "--NAME-whisper-model; key from NAME_API_KEY")  # fmt: skip
    for name in profiles:
        add(f"--{name}-model", dest=f"profile__{name}__model")
        add(f"--{name}-base-url", dest=f"profile__{name}__base_url")
        add(f"--{name}-whisper-model", dest=f"profile__{name}__whisper_model")
    add("-lmr", "--local-model-repo", help="hub repository of the local GGUF model")
    add("-lmf", "--local-model-file", help="GGUF file name in that repository")
    add("--local-model-path", help="a GGUF file on disk")
    add("--local-llm-instances", type=int, help="model instances of the local provider")
    add("--local-llm-threads", type=int, help="threads per local model instance")
    add("--context-tokens", type=int, help="largest request to send to the model, in tokens")
    add("-wp", "--whisper-provider", help="local, openai, or a profile")
    add("-lwm", "--local-whisper-model", help="faster-whisper model name or directory")
    add("-owm", "--openai-whisper-model", help="model for API transcription")
    add("--language", help="preferred caption language (default en)")
    add("-sb", "--sponsorblock", action="append", metavar="CAT",
        help="drop SponsorBlock segments of this category; repeatable")  # fmt: skip
    add("--sponsorblock-api", metavar="URL", help="SponsorBlock API base URL")
    add("--force-local-transcribe", action="store_true", default=None)
    add("--sections", choices=("fixed", "chapters"))
    add("--cookies", metavar="FILE", help="cookies file for yt-dlp")
    add("--cookies-from-browser", metavar="BROWSER", help="let yt-dlp read a browser's cookies")
    add("--yt-dlp-option", action="append", metavar="KEY=VALUE", default=None,
        help="pass an option to yt-dlp (VALUE as JSON when it parses); repeatable")  # fmt: skip
    add("--max-concurrent-llm", type=int, metavar="N")
    add("--max-concurrent-whisper", type=int, metavar="N")
    add("--chunk-strategy", choices=("adaptive", "fixed", "memory_optimized"))
    add("--chunk-seconds", type=float, metavar="S")
    add("--beam-size", type=int, metavar="N", help="whisper beam (default: 1 on CPU, 5 on GPU)")
    add("--vad", action=argparse.BooleanOptionalAction, default=None)
    add("--silence-threshold-db", type=float, metavar="DB")
    add("--min-silence-seconds", type=float, metavar="S")
    add("--fallback-provider", metavar="NAME",
        help="provider to try when a call still fails after its retries")  # fmt: skip
    add("--retry-max-attempts", type=int, metavar="N")
    add("--retry-base-delay", type=float, metavar="S")
    add("--request-timeout", type=float, metavar="S")
    add("--requests-per-minute", type=float, metavar="N")
    add("--tokens-per-minute", type=float, metavar="N")
    add("--memory-limit-mb", type=int, metavar="MB")
    add("--sequential", action="store_true", default=None,
        help="one LLM call at a time, in order (the original behaviour)")  # fmt: skip
    add("--no-cache", dest="cache", action="store_false", default=None)
    add("--cache-dir", metavar="DIR")
    add("--report", action="store_true", default=None, help="performance table on stderr")
    add("--report-json", metavar="PATH", help="write the performance report as JSON")
    add("-v", "--verbose", action="store_true", default=None)
    add("-q", "--quiet", action="store_true", default=None)
    add("--config", type=Path, metavar="PATH", help="config file (TOML)")
    return p


def _flags(ns: argparse.Namespace, profiles: Sequence[str]) -> dict[str, Any]:
    values = {k: v for k, v in vars(ns).items() if not k.startswith("profile__")}
    for key in ("sources", "config", "add_openai_profile"):
        values.pop(key, None)
    if values.get("yt_dlp_option") is not None:
        try:
            values["yt_dlp_options"] = dict(parse_assignment(o) for o in values["yt_dlp_option"])
        except ValueError as exc:
            raise UsageError(f"--yt-dlp-option: {exc}") from exc
    values.pop("yt_dlp_option", None)
    for key in ("format", "sponsorblock"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    if profiles:
        values["profiles"] = {
            name: Profile(
                name,
                base_url=getattr(ns, f"profile__{name}__base_url"),
                model=getattr(ns, f"profile__{name}__model"),
                whisper_model=getattr(ns, f"profile__{name}__whisper_model"),
            )
            for name in profiles
        }
    return values


class _Display:
    """Progress on stderr with rich: LLM calls, download bytes, seconds transcribed.
    Silent when quiet or not on a terminal."""

    LABELS: ClassVar[dict[str, str]] = {
        "resolve": "Getting video info",
        "captions": "Getting the transcript",
        "download": "Downloading audio",
        "transcribe": "Transcribing and summarizing",
        "summarize": "Summarizing",
    }
    TASKS: ClassVar[dict[str, str]] = {
        "total": "calls", "done": "calls",
        "download_total": "download", "download_done": "download",
        "audio_total": "audio", "audio_done": "audio",
    }  # fmt: skip

    def __init__(self, console: Console, enabled: bool) -> None:
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), console=console, transient=True, disable=not enabled,
        )  # fmt: skip
        self._tasks = {"calls": self._progress.add_task("Starting", total=None)}

    def __enter__(self) -> _Display:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str) -> None:
        self._progress.update(self._tasks["calls"], description=self.LABELS.get(name, name))

    def progress(self, kind: str, amount: int) -> None:
        name = self.TASKS.get(kind)
        if name is None:
            return
        if name not in self._tasks:
            label = {"download": "  audio bytes", "audio": "  seconds transcribed"}[name]
            self._tasks[name] = self._progress.add_task(label, total=0)
        task_id = self._tasks[name]
        if kind == "total" or kind.endswith("_total"):
            task = next(t for t in self._progress.tasks if t.id == task_id)
            self._progress.update(task_id, total=(task.total or 0) + amount)
        else:
            self._progress.advance(task_id, amount)


class _RedactSecrets(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self._secrets:
            message = message.replace(secret, "***")
        record.msg, record.args = message, ()
        return True


def _configure_logging(console: Console, settings: Settings) -> None:
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    secrets = [v for k, v in os.environ.items() if k.endswith(("_API_KEY", "_TOKEN"))]
    handler.addFilter(_RedactSecrets(secrets))
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = (
        logging.DEBUG if settings.verbose else logging.ERROR if settings.quiet else logging.WARNING
    )
    logger.setLevel(level)


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
        categories = sorted({f.category.replace("_", " ") for f in result.failures})
        parts.append(f"{len(result.failures)} failed ({', '.join(categories)})")
    return "; ".join(parts)


def _run_one(source: str, settings: Settings, console: Console) -> int:
    from yttl.pipeline import RunInterrupted, process_video

    tracker = PerformanceTracker()
    display_on = not settings.quiet and console.is_terminal

    async def run(display: _Display) -> RunResult:
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
        return await process_video(source, settings, observer=display, tracker=tracker,
                                   stop=stop)  # fmt: skip

    try:
        with _Display(console, display_on) as display:
            result = asyncio.run(run(display))
    except RunInterrupted as exc:
        # Whatever finished is in the cache; write it too, marked, so nothing is lost.
        if exc.partial is not None and exc.partial.hours:
            written = _write(exc.partial, settings, tracker, console)
            console.print(f"yttl: interrupted; wrote what was finished to "
                          f"{', '.join(map(str, written))}; run the same command to finish",
                          highlight=False, soft_wrap=True)  # fmt: skip
        else:
            console.print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    written = _write(result, settings, tracker, console)
    if result.interrupted:
        console.print(f"yttl: interrupted; wrote what was finished to "
                      f"{', '.join(map(str, written))}; run the same command to finish",
                      highlight=False, soft_wrap=True)  # fmt: skip
        return EXIT_INTERRUPTED
    if settings.report:
        from yttl.perf import report_table

        console.print(report_table(tracker.stats()))
    if not settings.quiet:
        console.print(_summary_line(result, written), highlight=False, soft_wrap=True)
    html = next((p for p in written if p.suffix == ".html"), None)
    wants_open = settings.open if settings.open is not None else sys.stdout.isatty()
    if html is not None and wants_open and not settings.transcript_only:
        webbrowser.open(html.resolve().as_uri())
    return EXIT_PARTIAL if result.partial else EXIT_OK


def _write(result: RunResult, settings: Settings, tracker: PerformanceTracker,
           console: Console) -> list[Path]:  # fmt: skip
    from yttl.render import TRANSCRIPT_FORMATS, atomic_write, write_outputs

    formats = list(settings.format)
    if settings.transcript_only:
        formats = [f for f in formats if f in TRANSCRIPT_FORMATS] or ["txt"]
    with tracker.phase("render"):
        written = write_outputs(result, formats, Path(settings.output_dir))
    if settings.report_json:
        atomic_write(Path(settings.report_json), json.dumps(tracker.stats(), indent=2) + "\n")
    return written


def _config_command(argv: Sequence[str], console: Console) -> int:
    from yttl.config import config_path, redacted

    parser = _ArgumentParser(prog="yttl config", allow_abbrev=False)
    parser.add_argument("action", choices=("show", "path", "suggest"))
    parser.add_argument("--config", type=Path, metavar="PATH")
    parser.add_argument("--duration", default="1h", help="video length: 2h, 90m, 1h30m")
    parser.add_argument("--provider", help="LLM provider to advise for (default: configured)")
    ns = parser.parse_args(argv)
    if ns.action == "path":
        print(ns.config or config_path())
        return EXIT_OK
    if ns.action == "suggest":
        return _suggest(ns, console)
    settings, origins = load_settings({}, config_file=ns.config)
    for name, value in vars(settings).items():
        shown = json.dumps(redacted(name, value), default=str)
        print(f"{name} = {shown}  # {origins[name]}")
    return EXIT_OK


def _suggest(ns: argparse.Namespace, console: Console) -> int:
    from yttl.transcribe.chunking import probe_hardware
    from yttl.tuning import endpoint_name, parse_duration, suggest

    try:
        duration = parse_duration(ns.duration)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    settings, _ = load_settings({}, config_file=ns.config)
    provider = ns.provider or endpoint_name(settings)
    hardware = probe_hardware()
    gpu = f", {hardware.cuda_devices} CUDA device(s)" if hardware.has_cuda else ", no GPU"
    print(
        f"# for this machine ({hardware.cores} cores, {hardware.total_mb} MB, "
        f"{hardware.available_mb} MB free{gpu}), a {ns.duration} video, provider {provider}"
    )
    for item in suggest(hardware, duration, provider):
        print(f"{item.key} = {json.dumps(item.value)}  # {item.reason}")
    return EXIT_OK


def _print_error(console: Console, exc: YttlError) -> None:
    console.print(f"yttl: error: {exc.message}", highlight=False, markup=False, soft_wrap=True)
    if exc.hint:
        console.print(f"  {exc.hint}", highlight=False, markup=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        if argv[:1] == ["config"]:
            return _config_command(argv[1:], console)
        profiles = _profile_names(argv)
        ns = build_parser(profiles).parse_intermixed_args(argv)
        settings, _ = load_settings(_flags(ns, profiles), config_file=ns.config)
        _configure_logging(console, settings)
        worst = EXIT_OK
        for source in ns.sources:
            try:
                code = _run_one(source, settings, console)
            except YttlError as exc:
                if settings.verbose:
                    console.print_exception()
                _print_error(console, exc)
                code = exit_code_for(exc)
            worst = code if code in (EXIT_FAILED, EXIT_USAGE) or worst == EXIT_OK else worst
        return worst
    except ConfigError as exc:
        _print_error(console, exc)
        return EXIT_USAGE
    except YttlError as exc:
        if verbose:
            console.print_exception()
        _print_error(console, exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        console.print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: say so in one line unless asked for the traceback
        if verbose:
            console.print_exception()
        else:
            exc_type, exc_value, _ = sys.exc_info()
            name = exc_type.__name__ if exc_type else "error"
            console.print(
                f"yttl: internal error ({name}: {exc_value}); rerun with -v for details",
                highlight=False, markup=False, soft_wrap=True,
            )  # fmt: skip
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
