"""The ``yttl`` command: parse, run the library, print, pick the exit code. Nothing else."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from yttl.cli.arguments import (
    ArgumentParser,
    attach_item_specs,
    build_parser,
    flags_of,
    profile_names,
)
from yttl.cli.subcommands import (
    config_command,
    extension_command,
    mcp_command,
    serve_command,
)
from yttl.config import Settings, load_settings
from yttl.errors import ConfigError, InputError, UsageError, YttlError
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

if TYPE_CHECKING:
    import logging

    from rich.console import Console

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
    "print_error",
]

LIBRARY_COMMANDS = ("search", "list", "show", "library", "ask")
SUBCOMMANDS = ("config", "mcp", "serve", "extension", "chat", *LIBRARY_COMMANDS)


class _Stderr:
    """rich's ``Console`` on stderr, made the first time it is asked for: a library
    command with nothing to say there (``yttl list --json``) starts without importing rich."""

    def __init__(self) -> None:
        self._console: Console | None = None

    def __call__(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console


def _configure_logging(console: Console, settings: Settings) -> None:
    """yttl's loggers to ``console``, secrets redacted. ``logging`` is imported here, not
    at the top: a library command never configures it, and it costs 8 ms of their start."""
    import logging

    from yttl.cli.loglines import LineHandler

    secrets = known_secrets(settings)

    def redact_secrets(record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), secrets), ()
        return True

    handler = LineHandler(console)
    handler.addFilter(redact_secrets)
    logger = logging.getLogger("yttl")
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
            "no SOURCE given",
            hint="give a URL, a media file, an info.json, or -a FILE; yttl --help lists the "
            "commands",
        )
    from yttl.sources import bare_word

    words = [source for source in ns.sources if bare_word(source)]
    if words:  # a typo or a search term on the command line, never a video: said before any
        # work, for every source given (a batch file's bad line fails alone, as any entry)
        raise InputError(
            f"{words[0]!r} is not a URL, a file or an info.json",
            hint="give a URL, a media file or an info.json; yttl --help lists the commands",
        )
    return sources


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stderr = _Stderr()
    verbose = "-v" in argv or "--verbose" in argv
    try:
        return _dispatch(argv, stderr)
    except ConfigError as exc:
        print_error(stderr(), exc)
        return EXIT_USAGE
    except YttlError as exc:
        if verbose:
            stderr().print_exception()
        print_error(stderr(), exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        stderr().print("yttl: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `yttl list --json | head`: the reader has all it wanted
        _silence_stdout()
        return EXIT_OK
    except Exception:  # a bug: say so in one line unless asked for the traceback
        if verbose:
            stderr().print_exception()
        else:
            exc_type, exc_value, _ = sys.exc_info()
            name = exc_type.__name__ if exc_type else "error"
            stderr().print(
                f"yttl: internal error ({name}: {exc_value}); rerun with -v for details",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        return EXIT_FAILED


def _mistyped_command(word: str) -> str | None:
    """The subcommand ``word`` was meant to be (``serch``: ``search``), when it is no URL,
    no file and no info.json but close to one's name."""
    if not word[:1].isalpha() or not word.replace("-", "").replace("_", "").isalnum():
        return None  # an option, a URL or a path: nothing to import for (--version is quick)
    import difflib

    from yttl.sources import bare_word

    if not bare_word(word):
        return None
    close = difflib.get_close_matches(word.lower(), SUBCOMMANDS, n=1, cutoff=0.75)
    return close[0] if close else None


def _dispatch(argv: list[str], stderr: _Stderr) -> int:
    command = argv[0] if argv else ""
    if command in SUBCOMMANDS and not Path(command).is_file():
        return _subcommand(command, argv, stderr)
    meant = _mistyped_command(command)
    if meant is not None:
        raise UsageError(f"unknown command {command!r}", hint=f"did you mean `yttl {meant}`?")
    console = stderr()
    profiles = profile_names(argv)
    ns = build_parser(profiles).parse_intermixed_args(attach_item_specs(argv))
    settings, _ = load_settings(flags_of(ns, profiles), config_file=ns.config)
    _configure_logging(console, settings)
    from yttl.cli.runner import run_command  # the stages: imported only for a run

    return run_command(_sources(ns), settings, console)


def _subcommand(command: str, argv: list[str], stderr: _Stderr) -> int:
    """A subcommand's usage errors point to its own ``--help``."""
    try:
        if command == "config":
            return config_command(argv[1:], stderr())
        if command == "mcp":
            return mcp_command(argv[1:], stderr(), _configure_logging)
        if command == "serve":
            return serve_command(argv[1:], stderr(), _configure_logging)
        if command == "extension":
            return extension_command(argv[1:], stderr())
        if command == "chat":
            from yttl.cli.chat import chat_command

            return chat_command(argv[1:], ArgumentParser)
        from yttl.cli.library import run_library_command

        return run_library_command(argv, stderr, ArgumentParser)
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
    (threads joined at exit), or in the moment between two handlers, still ends with one
    line and 130."""
    try:
        code = main()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, lambda *_: exit_now())
        if code == EXIT_INTERRUPTED:  # said and written: leave now, not after the
            exit_now(code, say=False)  # interpreter's teardown (another Ctrl-C may come)
    except KeyboardInterrupt:
        exit_now()
    return code


if __name__ == "__main__":
    raise SystemExit(console_main())
