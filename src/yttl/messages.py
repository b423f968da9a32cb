"""How an error reads to a person: the one or two lines every face shows.

The CLI prints them on stderr, ``yttl mcp`` returns them to the client as a tool error,
``yttl serve`` puts them in a page or a JSON body. Stages raise; this only words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yttl.errors import YttlError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["error_line", "error_lines", "print_error"]


def error_lines(exc: YttlError, prefix: str = "") -> list[str]:
    """The message, then the hint (what to do) if there is one."""
    lines = [f"{prefix}{exc.message}"]
    if exc.hint:
        lines.append(exc.hint)
    return lines


def error_line(exc: YttlError, prefix: str = "") -> str:
    """Both in one line, for a client that shows one (MCP, a panel, a JSON ``error``)."""
    return "; ".join(error_lines(exc, prefix))


def print_error(console: Console, exc: YttlError, prefix: str = "") -> None:
    message, *hints = error_lines(exc, prefix)
    console.print(f"yttl: error: {message}", highlight=False, markup=False, soft_wrap=True)
    for hint in hints:
        console.print(f"  {hint}", highlight=False, markup=False, soft_wrap=True)
