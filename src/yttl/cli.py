"""The ``yttl`` command: parse, run the library, print, pick the exit code. Nothing else."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from yttl._version import __version__
from yttl.config import FORMATS, Profile, Settings, load_settings, parse_assignment
from yttl.errors import ConfigError, UsageError, YttlError
from yttl.exitcodes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    exit_code_for,
    exit_now,
)
from yttl.messages import print_error
from yttl.redaction import known_secrets, redact

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "exit_code_for",
    "main",
    "print_error",
]

logger = logging.getLogger("yttl")
LIBRARY_COMMANDS = ("search", "list", "show", "library", "ask")
SUBCOMMANDS = ("config", "mcp", "serve", *LIBRARY_COMMANDS)
COMMANDS_HELP = """commands (each has its own --help):
  yttl search QUERY            find the moments that discuss something
  yttl list                    the videos in the library
  yttl show ID                 one video's summary (-f md|json)
  yttl ask ID QUESTION         an answer from a video, with linked citations
  yttl library import DIR      take in the JSON outputs of earlier runs
  yttl config show|path|suggest  settings, where they come from, advice for this machine
  yttl mcp                     the library as MCP tools on stdio (for AI assistants)
  yttl serve [--port N] [--open]  the library, search, questions and jobs in the browser
"""


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


_ITEMS_FROM_THE_END = re.compile(r"^-[\d][\d:,\-]*$")


def _attach_item_specs(argv: Sequence[str]) -> list[str]:
    """``--playlist-items -2:`` as ``--playlist-items=-2:``: argparse would take a value
    that starts with a dash for an option of its own."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--playlist-items" and _ITEMS_FROM_THE_END.match(arg):
            out[-1] = f"--playlist-items={arg}"
        else:
            out.append(arg)
    return out


def build_parser(profiles: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="yttl",
        usage="yttl [OPTIONS] SOURCE... | yttl COMMAND ...",
        description="Summarize a video (URL, media file or yt-dlp info.json), hour by hour "
        "and 5 minutes at a time, with links to each moment. Several sources, a playlist "
        "or a batch file run as one batch under the provider's limits.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="URL (a video, playlist or channel), media file, or *.info.json "
                   "(a video's or a playlist's)")  # fmt: skip
    p.add_argument("--version", action="version", version=f"yttl {__version__}")

    add = p.add_argument_group("input").add_argument
    add("-a", "--batch-file", action="append", metavar="FILE",
        help="sources from FILE, one a line (# comments; - for standard input)")  # fmt: skip
    add("--playlist-items", metavar="SPEC",
        help="entries of a playlist, e.g. 1-3,7 or -2: (the last two)")  # fmt: skip
    add("--max-videos", type=int, metavar="N", help="at most N entries of a playlist")
    add("--dateafter", metavar="DATE", help="only entries uploaded on or after DATE")
    add("--language", help="preferred caption language (default en)")
    add("--cookies", metavar="FILE", help="cookies file for yt-dlp")
    add("--cookies-from-browser", metavar="BROWSER", help="let yt-dlp read a browser's cookies")
    add("--yt-dlp-option", action="append", metavar="KEY=VALUE", default=None,
        help="pass an option to yt-dlp (VALUE as JSON when it parses); repeatable")  # fmt: skip
    add("-sb", "--sponsorblock", action="append", metavar="CAT",
        help="drop SponsorBlock segments of this category; repeatable")  # fmt: skip
    add("--sponsorblock-api", metavar="URL", help="SponsorBlock API base URL")

    add = p.add_argument_group("summarization").add_argument
    add("-lp", "--llm-provider", help="local, openai, groq, chatgpt, huggingchat or a profile")
    add("-om", "--openai-model", help="model of the openai provider (only)")
    add("-ou", "--openai-base-url", help="base URL of the openai provider (only)")
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
    add("--sections", choices=("fixed", "chapters"),
        help="5-minute sections, or the video's chapters when it has them")  # fmt: skip
    add("--summary-language", metavar="LANG",
        help="language of every summary: a name or a code (default: the transcript's)")  # fmt: skip
    add("--no-overview", dest="overview", action="store_false", default=None,
        help="no overview of videos longer than an hour (one call fewer)")  # fmt: skip
    add("--transcript-only", action="store_true", default=None, help="write the transcript only")

    add = p.add_argument_group("transcription").add_argument
    add("-wp", "--whisper-provider", help="local, openai, or a profile")
    add("-lwm", "--local-whisper-model", help="faster-whisper model name or directory")
    add("-owm", "--openai-whisper-model", help="model for API transcription")
    add("--force-local-transcribe", action="store_true", default=None,
        help="ignore caption tracks")  # fmt: skip
    add("--chunk-strategy", choices=("adaptive", "fixed", "memory_optimized"),
        help="how audio is cut for whisper")  # fmt: skip
    add("--chunk-seconds", type=float, metavar="S", help="audio chunk length (default: hardware)")
    add("--beam-size", type=int, metavar="N", help="whisper beam (default: 2 on CPU, 5 on GPU)")
    add("--vad", action=argparse.BooleanOptionalAction, default=None,
        help="skip silence with Silero VAD")  # fmt: skip
    add("--silence-threshold-db", type=float, metavar="DB", help="quieter than this is silence")
    add("--min-silence-seconds", type=float, metavar="S",
        help="the shortest pause that counts as silence")  # fmt: skip

    add = p.add_argument_group("resilience").add_argument
    add("--fallback-provider", metavar="NAME",
        help="provider to try when a call still fails after its retries")  # fmt: skip
    add("--retry-max-attempts", type=int, metavar="N", help="tries of a failing call")
    add("--retry-base-delay", type=float, metavar="S",
        help="first back-off between tries, doubling after each")  # fmt: skip
    add("--request-timeout", type=float, metavar="S",
        help="per attempt, counted from sending (never while a call waits its turn)")  # fmt: skip
    add("--breaker-deadline", type=float, metavar="S",
        help="how long calls wait for a failing endpoint to come back (default 60)")  # fmt: skip
    add("--no-cache", dest="cache", action="store_false", default=None,
        help="neither reuse nor keep results (a rerun redoes everything)")  # fmt: skip
    add("--cache-dir", metavar="DIR", help="results cache and models (default: user cache dir)")
    add("--no-library", dest="library", action="store_false", default=None,
        help="do not record this run in the searchable library")  # fmt: skip
    add("--library-path", metavar="PATH", help="the library's SQLite file")

    add = p.add_argument_group("performance and batches").add_argument
    add("--max-concurrent-llm", type=int, metavar="N", help="LLM calls in flight, whole run")
    add("--requests-per-minute", type=float, metavar="N",
        help="pace LLM calls to this budget (default: provider preset)")  # fmt: skip
    add("--tokens-per-minute", type=float, metavar="N",
        help="pace LLM tokens to this budget (default: provider preset)")  # fmt: skip
    add("--sequential", action="store_true", default=None,
        help="one LLM call at a time, in order (the original behaviour)")  # fmt: skip
    add("--max-concurrent-videos", type=int, metavar="N",
        help="videos resolved, downloaded and transcribed at once (default: hardware)")  # fmt: skip
    add("--max-concurrent-whisper", type=int, metavar="N",
        help="transcription workers or uploads (default: hardware)")  # fmt: skip
    add("--memory-limit-mb", type=int, metavar="MB",
        help="budget for audio buffers and local models (default: hardware)")  # fmt: skip
    add("--executor", choices=("local", "ray"), help="where a batch runs (default local)")
    add("--ray-address", metavar="ADDR", help="Ray cluster (auto, ray://host:port)")
    add("--ray-whisper-gpus", type=float, metavar="N", help="GPUs for the Whisper actor")

    add = p.add_argument_group("output").add_argument
    add("-o", "--output-dir", help="where outputs go (DIR/<video_id>.<ext>; default ./out)")
    add("-f", "--format", action="append", choices=FORMATS, help="repeatable; default html")
    add("--open", action=argparse.BooleanOptionalAction, default=None,
        help="open the HTML when done (default: only on a terminal)")  # fmt: skip
    add("--report", action="store_true", default=None, help="performance table on stderr")
    add("--report-json", metavar="PATH", help="write the performance report as JSON")
    add("-v", "--verbose", action="store_true", default=None,
        help="debug logs, and a traceback with an error")  # fmt: skip
    add("-q", "--quiet", action="store_true", default=None, help="errors only")
    add("--config", type=Path, metavar="PATH",
        help="config file (TOML; default: yttl config path)")  # fmt: skip
    _show_defaults(p)
    return p


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Each option's help ends with its built-in default (``Settings``), unless it says."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for action in parser._actions:
        value = defaults.get(action.dest)
        if action.help and "default" not in action.help and value not in (None, (), "", False):
            shown = ", ".join(value) if isinstance(value, tuple) else value
            action.help += f" (default: {shown})"


def _flags(ns: argparse.Namespace, profiles: Sequence[str]) -> dict[str, Any]:
    values = {k: v for k, v in vars(ns).items() if not k.startswith("profile__")}
    for key in ("sources", "config", "add_openai_profile", "batch_file"):
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


class _RedactSecrets(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self._secrets), ()
        return True


def _configure_logging(console: Console, settings: Settings) -> None:
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    handler.addFilter(_RedactSecrets(known_secrets(settings)))
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = (
        logging.DEBUG if settings.verbose else logging.ERROR if settings.quiet else logging.WARNING
    )
    logger.setLevel(level)


def _sources(ns: argparse.Namespace) -> list[str]:
    from yttl.sources.playlists import read_batch_file

    sources = list(ns.sources)
    for path in ns.batch_file or ():
        sources.extend(read_batch_file(path))
    if not sources:
        raise UsageError(
            "no SOURCE given", hint="give a URL, a media file, an info.json, or -a FILE"
        )
    return sources


def _mcp_command(argv: Sequence[str], console: Console) -> int:
    """``yttl mcp``: stdout belongs to the protocol; every log goes to stderr."""
    parser = _ArgumentParser(prog="yttl mcp", allow_abbrev=False)
    parser.add_argument("--library-path", metavar="PATH")
    parser.add_argument("--config", type=Path, metavar="PATH")
    parser.add_argument("-lp", "--llm-provider")
    ns = parser.parse_args(argv)
    flags = {"library_path": ns.library_path, "llm_provider": ns.llm_provider,
             "quiet": True, "open": False}  # fmt: skip
    settings, _ = load_settings(flags, config_file=ns.config)
    _configure_logging(console, settings)
    try:
        from yttl.mcp_server import build_server
    except ImportError as exc:
        raise UsageError(
            "yttl mcp needs the MCP SDK", hint="pip install -e '.[mcp]' in yttl's checkout"
        ) from exc
    from yttl.config import library_path

    console.print(f"yttl mcp: serving the library at {library_path(settings)} over stdio; "
                  "stop it with Ctrl-C or by closing its input", highlight=False,
                  markup=False, soft_wrap=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        build_server(settings).run("stdio")
    return EXIT_OK


def _serve_command(argv: Sequence[str], console: Console) -> int:
    """``yttl serve``: run options given to it are the defaults of its jobs."""
    from yttl.config import config_path

    profiles = _profile_names(argv)
    parser = build_parser(profiles)
    parser.prog, parser.usage = "yttl serve", "yttl serve [--port N] [--open] [OPTIONS]"
    parser.description = (
        "The library, search, questions and jobs in the browser, and the "
        "API of the browser extension. Run options are its jobs' defaults."
    )
    parser.epilog = None
    add = parser.add_argument_group("serve").add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    add("--port", type=int, metavar="N", help="port (default: 8765; 0 picks a free one)")
    add("--allow-remote", action="store_true", help="allow a --host other than loopback")
    add("--allow-host", action="append", metavar="NAME", default=[],
        help="another name the Host header may carry (a reverse proxy's); repeatable")  # fmt: skip
    add("--allow-origin", action="append", metavar="ORIGIN", default=[],
        help="a web origin that may call the API (CORS); repeatable")  # fmt: skip
    add("--new-token", action="store_true", help="make a new token (ends every session)")
    add("--print-token", action="store_true", help="print the token and exit")
    ns = parser.parse_intermixed_args(list(argv))
    if ns.sources:
        raise UsageError(f"yttl serve takes no SOURCE ({ns.sources[0]!r}); submit jobs in "
                         "the browser or with POST /api/v1/jobs")  # fmt: skip
    flags = _flags(ns, profiles)
    for key in ("host", "port", "allow_remote", "allow_host", "allow_origin", "new_token",
                "print_token", "open"):  # fmt: skip
        flags.pop(key, None)
    if ns.allow_origin:
        flags["serve_allowed_origins"] = tuple(ns.allow_origin)
    if ns.allow_host:
        flags["serve_allowed_hosts"] = tuple(ns.allow_host)
    if ns.port is not None:
        flags["serve_port"] = ns.port
    flags.update(open=False, quiet=True)
    settings, origins = load_settings(flags, config_file=ns.config)
    _configure_logging(console, settings)
    token_file = config_path().parent / "serve-token"
    if ns.print_token:
        from yttl.serve.tokens import load_token

        print(load_token(token_file, rotate=ns.new_token))
        return EXIT_OK
    if origins.get("output_dir", "default") == "default":
        import platformdirs

        settings = dataclasses.replace(
            settings, output_dir=str(Path(platformdirs.user_data_dir("yttl")) / "outputs")
        )
    try:
        from yttl.serve import ServeOptions, run_server
    except ImportError as exc:
        raise UsageError("yttl serve needs its extra",
                         hint="pip install -e '.[serve]' in yttl's checkout") from exc  # fmt: skip
    options = ServeOptions(ns.host, settings.serve_port, bool(ns.open), ns.allow_remote,
                           ns.new_token, token_file)  # fmt: skip
    run_server(settings, options, lambda line: console.print(line, highlight=False, markup=False,
                                                             soft_wrap=True))  # fmt: skip
    return EXIT_OK


def _config_command(argv: Sequence[str], console: Console) -> int:
    from yttl.config import config_path, toml_value
    from yttl.redaction import redacted

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
    from yttl.redaction import is_secret_name
    from yttl.tuning import effective_defaults

    settings, origins = load_settings({}, config_file=ns.config)
    defaults = effective_defaults(settings)
    for name, value in vars(settings).items():
        if name == "profiles":
            continue
        if is_secret_name(name):  # whether it is set, never what it is
            state = f"set; {origins[name]}" if value else "not set"
            print(f"# {name} = ...  ({state}; prefer the environment variable)")
        elif value is None or value == {}:
            default = defaults.get(name)
            meaning = f"default: {default}" if default else "not set"
            print(f"# {name} =  ({meaning}; {origins[name]})")
        else:
            print(f"{name} = {toml_value(redacted(name, value))}  # {origins[name]}")
    for profile in settings.profiles.values():
        print(f"\n[profiles.{profile.name}]  # {origins['profiles']}")
        for key, value in dataclasses.asdict(profile).items():
            if key != "name" and value is not None:
                print(f"{key} = {toml_value(redacted(key, value))}")
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    verbose = "-v" in argv or "--verbose" in argv
    try:
        return _dispatch(argv, console)
    except ConfigError as exc:
        print_error(console, exc)
        return EXIT_USAGE
    except YttlError as exc:
        if verbose:
            console.print_exception()
        print_error(console, exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        console.print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `yttl list --json | head`: the reader has all it wanted
        _silence_stdout()
        return EXIT_OK
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


def _dispatch(argv: list[str], console: Console) -> int:
    command = argv[0] if argv else ""
    if command in SUBCOMMANDS and not Path(command).exists():
        return _subcommand(command, argv, console)
    profiles = _profile_names(argv)
    ns = build_parser(profiles).parse_intermixed_args(_attach_item_specs(argv))
    settings, _ = load_settings(_flags(ns, profiles), config_file=ns.config)
    _configure_logging(console, settings)
    from yttl.runner import run_command  # the stages: imported only for a run

    return run_command(_sources(ns), settings, console)


def _subcommand(command: str, argv: list[str], console: Console) -> int:
    """A subcommand's usage errors point to its own ``--help``."""
    try:
        if command == "config":
            return _config_command(argv[1:], console)
        if command == "mcp":
            return _mcp_command(argv[1:], console)
        if command == "serve":
            return _serve_command(argv[1:], console)
        from yttl.library_commands import run_library_command

        return run_library_command(argv, console, _ArgumentParser)
    except UsageError as exc:
        if exc.hint == "see yttl --help":
            exc.hint = f"see yttl {command} --help"
        raise


def _silence_stdout() -> None:
    """After a broken pipe, the interpreter's own flush at exit must not complain too."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def console_main() -> int:
    """The ``yttl`` program: ``main``, then a Ctrl-C while the interpreter winds down
    (threads joined at exit) still ends with one line and 130."""
    code = main()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: exit_now())
    return code


if __name__ == "__main__":
    raise SystemExit(console_main())
