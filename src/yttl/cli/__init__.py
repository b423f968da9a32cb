"""Face 1, the terminal: parsing, commands and display (DESIGN §2).

``main`` parses, runs the library, prints and picks the exit code; the modules beside it
hold the words (``arguments``), the run's progress (``runner``, ``display``), the library
commands (``library``) and the other subcommands (``subcommands``). Nothing here is a
stage: everything a command does is callable from Python without it.
"""

from __future__ import annotations

from yttl.cli.main import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    build_parser,
    console_main,
    exit_code_for,
    main,
    print_error,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "build_parser",
    "console_main",
    "exit_code_for",
    "main",
    "print_error",
]
