"""What every handler of one server shares: settings, the library, the jobs, the guard,
and one set of components for questions (so the breaker and budget are the jobs' too)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from yttl.config import Settings
from yttl.library import Library
from yttl.serve.jobs import JobManager
from yttl.serve.security import Guard

if TYPE_CHECKING:
    from yttl.embed.indexing import EmbedderHolder
    from yttl.factory import RunComponents

__all__ = ["ServerState", "youtube_id"]

_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def youtube_id(url: str) -> str | None:
    """The video id of a YouTube URL (watch, youtu.be, shorts, live, embed), else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "http://[::1": a broken IPv6 address is no URL
        return None
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    candidate: str | None = None
    if host in ("youtube.com", "music.youtube.com", "youtube-nocookie.com"):
        if parts.path == "/watch":
            values = parse_qs(parts.query).get("v")
            candidate = values[0] if values else None
        else:
            pieces = [p for p in parts.path.split("/") if p]
            if len(pieces) >= 2 and pieces[0] in ("shorts", "live", "embed", "v"):
                candidate = pieces[1]
    elif host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0] or None
    return candidate if candidate and _ID.match(candidate) else None


@dataclass
class ServerState:
    settings: Settings
    library: Library
    jobs: JobManager
    guard: Guard
    output_dir: Path
    embeddings: EmbedderHolder | None = None  # queries and jobs alike
    _ask: RunComponents | None = field(default=None, repr=False)
    _ask_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    answering: set[str] = field(default_factory=set, repr=False)  # chat threads mid-answer

    async def ask_components(self) -> RunComponents:
        """Built once, off the loop (the local model may load): questions share the
        providers' budgets and breakers with every job of the server."""
        from yttl.factory import build_components

        async with self._ask_lock:
            if self._ask is None:
                self._ask = await asyncio.to_thread(build_components, self.settings)
                self._ask.embeddings = self.embeddings
        return self._ask.for_run(asyncio.Event())

    async def close(self) -> None:
        await self.jobs.close()
        if self._ask is not None:
            self._ask.embeddings = None  # closed below, once
            await self._ask.aclose()
        if self.embeddings is not None:
            await self.embeddings.aclose()
