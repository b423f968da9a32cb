"""Exit codes (DESIGN §3) and the one mapping from errors to them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from yttl.errors import InputError, ModelNotFoundError, RunInterrupted, UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "exit_code_for",
    "exit_now",
    "worst_exit",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_SEVERITY = {EXIT_OK: 0, EXIT_PARTIAL: 1, EXIT_USAGE: 2, EXIT_FAILED: 3, EXIT_INTERRUPTED: 4}


def exit_code_for(exc: BaseException) -> int:
    """The single mapping from errors to exit codes."""
    import asyncio  # here: the CLI's start-up does not need it

    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | RunInterrupted):
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError | InputError | ModelNotFoundError):
        return EXIT_USAGE
    return EXIT_FAILED


def worst_exit(codes: Sequence[int]) -> int:
    """A batch's code: the worst of its videos' (interrupted > failed > usage > partial)."""
    return max(codes, key=lambda code: _SEVERITY.get(code, 3), default=EXIT_OK)


def exit_now(code: int = EXIT_INTERRUPTED, *, say: bool = True) -> NoReturn:
    """A third Ctrl-C, or one while the process winds down: one line, exit 130, at once
    (no traceback from a thread being joined, nothing more)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        if say:
            sys.stderr.write("yttl: interrupted\n")
        sys.stderr.flush()
    os._exit(code)
