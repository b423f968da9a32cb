"""``yttl mcp``: the library and the pipeline as Model Context Protocol tools, on stdio.

Built on the official SDK's ``MCPServer`` (mcp 2.x; FastMCP in 1.x). Tools: ``search``,
``list_videos``, ``get_summary``, ``get_transcript`` (a time range), ``ask`` and
``summarize`` (runs the pipeline on a URL or file, reporting progress as MCP progress
notifications). Nothing but protocol goes to stdout: logs, yt-dlp and warnings go to
stderr.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from yttl._version import __version__
from yttl.config import Settings, library_path
from yttl.library import Library
from yttl.render.links import format_clock

__all__ = ["build_server"]

INSTRUCTIONS = (
    "yttl keeps a library of summarized videos (talks, lectures, podcasts). Use search to "
    "find the moments that discuss something (each hit links to its time), get_summary "
    "for a video's summary, get_transcript for what was said in a time range, ask for an "
    "answer with citations, and summarize to add a video by URL or path."
)


class _Progress:
    """A run's observer that turns its progress into MCP progress notifications."""

    def __init__(self, context: Context[Any]) -> None:
        self._context = context
        self._phase = "starting"
        self.total = 0
        self.done = 0
        self._sent: set[asyncio.Task[None]] = set()

    def _send(self) -> None:
        message = f"{self._phase}: {self.done}/{self.total} calls"
        task = asyncio.ensure_future(
            self._context.report_progress(self.done, self.total or None, message)
        )
        self._sent.add(task)
        task.add_done_callback(self._sent.discard)

    def phase(self, name: str) -> None:
        self._phase = name
        self._send()

    def progress(self, kind: str, amount: int) -> None:
        if kind == "total":
            self.total += amount
        elif kind == "done":
            self.done += amount
        else:
            return
        self._send()

    async def flush(self) -> None:
        if self._sent:
            await asyncio.gather(*self._sent, return_exceptions=True)


def build_server(settings: Settings) -> MCPServer:
    server: MCPServer = MCPServer("yttl", version=__version__, instructions=INSTRUCTIONS)

    def library() -> Library:
        return Library(library_path(settings))

    @server.tool()
    def search(query: str, limit: int = 10, video_id: str | None = None) -> list[dict[str, Any]]:
        """Sections of summarized videos that match the query, best first, each with the
        video, its time (seconds), a snippet with the match marked, and a link to the
        moment."""
        return [hit.as_dict() for hit in library().search(query, limit=limit, video=video_id)]

    @server.tool()
    def list_videos() -> list[dict[str, Any]]:
        """Every video in the library: id, title, url, duration, model, sections."""
        return library().videos()

    @server.tool()
    def get_summary(video_id: str, format: str = "md") -> str:
        """A video's summary: Markdown (format "md") or the JSON document ("json")."""
        document = library().document(video_id)
        if format == "json":
            import json

            return json.dumps(document, ensure_ascii=False)
        from yttl.render.markdown import markdown_from_view

        return markdown_from_view(document)

    @server.tool()
    def get_transcript(video_id: str, start: float = 0.0, end: float | None = None) -> str:
        """What was said between start and end (seconds), one line per segment."""
        segments = library().transcript(video_id, start, end)
        return "\n".join(f"[{format_clock(s.start)}] {s.text}" for s in segments)

    @server.tool()
    async def ask(video_id: str, question: str) -> dict[str, Any]:
        """An answer to the question from that video, with the times it cites, or a
        statement that the video does not contain it."""
        from yttl.ask import ask as answer

        return (await answer(library(), video_id, question, settings)).as_dict()

    @server.tool()
    async def summarize(source: str, ctx: Context[Any]) -> dict[str, Any]:
        """Summarize a video (a URL, a media file path, or a yt-dlp info.json) and add it
        to the library; progress comes as notifications."""
        from yttl.batch import outcome_of
        from yttl.pipeline import process_video
        from yttl.runner import save_video
        from yttl.sources.playlists import BatchEntry

        progress = _Progress(ctx)
        result = await process_video(source, settings, observer=progress)
        await progress.flush()
        paths = await asyncio.to_thread(save_video, result, settings,
                                        library() if settings.library else None)  # fmt: skip
        status = outcome_of(BatchEntry(source, source), result).status
        return {"video_id": result.video.id, "title": result.video.title, "status": status,
                "outputs": [str(p) for p in paths],
                "failures": [f"{f.where}: {f.message}" for f in result.failures]}  # fmt: skip

    return server
