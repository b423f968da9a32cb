"""yttl's log records on the terminal's stderr: one plain line each, as its errors are."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["LineHandler"]


class LineHandler(logging.Handler):
    """A record as ``yttl: warning: ...`` through the console (so it lands above a
    progress bar): one line, never wrapped or padded to the terminal's width (rich's own
    handler pads every line with spaces), no markup; a traceback (``-v``) follows it."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
            text = f"yttl: {kind}{' '.join(record.getMessage().split())}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._console.print(text, highlight=False, markup=False, soft_wrap=True, emoji=False)
        except Exception:
            self.handleError(record)
