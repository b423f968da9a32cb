"""How an error reads to a person: the one or two lines every face shows.

The CLI prints them on stderr, ``yttl mcp`` returns them to the client as a tool error,
``yttl serve`` puts them in a page or a JSON body. Stages raise; this only words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from yttl.errors import InputError, NetworkError, ProcessingError, YttlError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "count_of",
    "error_line",
    "error_lines",
    "not_embedded",
    "plain_reason",
    "print_error",
    "tool_error_line",
    "whisper_model_error",
]


def count_of(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 LLM call``, ``2 LLM calls``, ``0 videos``: a count with its noun agreeing, the
    one place every printed count is worded."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def error_lines(exc: YttlError, prefix: str = "") -> list[str]:
    """The message, then the hint (what to do) if there is one."""
    lines = [f"{prefix}{exc.message}"]
    if exc.hint:
        lines.append(exc.hint)
    return lines


def error_line(exc: YttlError, prefix: str = "") -> str:
    """Both in one line, for a client that shows one (MCP, a panel, a JSON ``error``)."""
    return "; ".join(error_lines(exc, prefix))


# A hint that names a shell command, as an MCP client can act on it: by calling a tool.
TOOL_HINTS = {
    "see yttl list": "call the list_videos tool for the ids in the library",
    "summarize a video, or yttl library import DIR": "call the summarize tool with a "
    "video's URL or path first",
}


def tool_error_line(exc: YttlError) -> str:
    """The line an MCP client gets: the message, and a hint in terms of the server's tools.
    A hint that tells a person to run ``yttl ...`` and has no tool to say it with is left
    out: an AI client cannot run shell commands on the user's machine."""
    hint = TOOL_HINTS.get(exc.hint or "", exc.hint)
    if hint is not None and hint == exc.hint and "yttl " in hint:
        hint = None
    return f"{exc.message}; {hint}" if hint else exc.message


def print_error(console: Console, exc: YttlError, prefix: str = "") -> None:
    message, *hints = error_lines(exc, prefix)
    console.print(f"yttl: error: {message}", highlight=False, markup=False, soft_wrap=True)
    for hint in hints:
        console.print(f"  {hint}", highlight=False, markup=False, soft_wrap=True)


_CLASS_NAME = re.compile(r":\s*[A-Za-z_.]*(?:Error|error|Exception|Timeout|Failure)$")


def plain_reason(exc: YttlError) -> str:
    """The message without a trailing exception class name (``...: gaierror``), which
    tells a person nothing: a connection that failed is said in words instead."""
    message = exc.message.strip()
    if _CLASS_NAME.search(message):
        offline = isinstance(exc.__cause__, OSError) or "connect" in message.lower()
        message = _CLASS_NAME.sub(": no connection (offline?)" if offline else "", message)
    return message


def not_embedded(exc: YttlError, video_id: str | None = None) -> str:
    """The one line said when the embedder cannot be had or fails (a run, import, serve,
    MCP): why, what still works, and what to do."""
    where = f"{video_id}: " if video_id else ""
    later = "yttl library reindex embeds it later" if video_id else None
    hint = f" ({exc.hint or later})" if exc.hint or later else ""
    return f"{where}not embedded, so search is by words only: {plain_reason(exc)}{hint}"


_WHISPER_HINT = (
    "give a faster-whisper model name (tiny.en, base.en, small, ...) or the directory of a "
    "CTranslate2 model with --local-whisper-model"
)


def whisper_model_error(name: str, exc: Exception) -> YttlError:
    """Why a Whisper model did not load, in one line and a next step: the hub cannot be
    reached (the hub client's long text, which says it twice, is left out), a name
    faster-whisper does not know (an input error), or the model itself failed."""
    if isinstance(exc, OSError):  # no connection, offline, or no such repository
        return NetworkError(
            f"cannot download the whisper model {name!r}: the model hub cannot be reached "
            "(offline?) and it is not in the cache",
            hint="check the connection, or give a downloaded model's folder with "
            "--local-whisper-model DIR (or -wp openai)",
        )
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, ValueError):  # faster-whisper knows no model of that name
        return InputError(f"no whisper model {name!r}", hint=_WHISPER_HINT)
    return ProcessingError(f"cannot load the whisper model {name!r}: {first}", hint=_WHISPER_HINT)
