"""``yttl mcp``: the library and the pipeline as Model Context Protocol tools, on stdio.

Built on the official SDK's ``MCPServer`` (mcp 2.x; FastMCP in 1.x). Tools: ``search``,
``list_videos``, ``get_summary``, ``get_transcript`` (a time range), ``ask`` and
``summarize`` (runs the pipeline on a URL or file, reporting progress as MCP progress
notifications). Nothing but protocol goes to stdout: logs, yt-dlp and warnings go to
stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from yttl._version import __version__
from yttl.config import Settings, library_path
from yttl.embed.factory import embedder_holder
from yttl.errors import YttlError
from yttl.library import Library
from yttl.messages import count_of, tool_error_line
from yttl.render.links import format_clock

if TYPE_CHECKING:
    from yttl.batch import VideoOutcome
    from yttl.factory import RunComponents
    from yttl.sources.playlists import BatchEntry

P = ParamSpec("P")
T = TypeVar("T")

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
        message = f"{self._phase}: {self.done}/{count_of(self.total, 'call')}"
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


class _BatchProgress:
    """The batch observer of one ``summarize`` call: its video reports to the client."""

    def __init__(self, progress: _Progress) -> None:
        self._progress = progress

    def video(self, entry: BatchEntry) -> _Progress:
        return self._progress

    def finished(self, outcome: VideoOutcome) -> None:
        pass


FORMATS = ("md", "json")
MAX_LIMIT = 100


def _refuse(message: str) -> ToolError:
    return ToolError(message)


def _checked(function: Callable[P, T]) -> Callable[P, T]:
    """yttl's errors reach the client as their one line (``ToolError``), not as "Error
    executing tool"; anything else is a bug and says so in one line too."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except ToolError:
            raise
        except YttlError as exc:
            raise ToolError(tool_error_line(exc)) from exc

    return call


def _checked_async(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await function(*args, **kwargs)
        except ToolError:
            raise
        except YttlError as exc:
            raise ToolError(tool_error_line(exc)) from exc

    return call


_MUST_BE = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
}


def _plainly(tool: str, errors: list[Any]) -> str:
    """pydantic's account of bad arguments (several lines, a URL, the model's name) as the
    one line a client can act on: ``get_summary: video_id is missing``."""
    said = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ())) or "the arguments"
        if error.get("type") == "missing":
            said.append(f"{field} is missing")
        elif error.get("type") in _MUST_BE:
            said.append(f"{field} must be {_MUST_BE[error['type']]}, not {error.get('input')!r}")
        else:
            message = str(error.get("msg", "is not valid"))
            said.append(f"{field}: {message[:1].lower()}{message[1:]}")
    return f"{tool}: {'; '.join(said)}"


class _Server(MCPServer):
    """The SDK's server, with bad arguments refused in one plain line."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(_plainly(name, list(cause.errors()))) from cause
            raise


class _Shared:
    """One set of components for every call of the server, built off the loop the first
    time it is needed (a local model may load): the providers' budgets and breakers last
    as long as the server does."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: RunComponents | None = None
        self._lock = asyncio.Lock()
        self.embeddings = embedder_holder(settings)

    async def for_run(self, stop: asyncio.Event | None = None) -> RunComponents:
        from yttl.factory import build_components

        async with self._lock:
            if self._built is None:
                self._built = await asyncio.to_thread(build_components, self._settings)
                self._built.embeddings = self.embeddings
        return self._built.for_run(stop or asyncio.Event(), self._settings)


def build_server(settings: Settings) -> MCPServer:
    # The SDK logs each refused call at INFO, through rich, on stderr: only with -v.
    server: MCPServer = _Server(
        "yttl",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="DEBUG" if settings.verbose else "WARNING",
    )
    shared = _Shared(settings)

    def library() -> Library:
        return Library(library_path(settings))

    @server.tool()
    @_checked_async
    async def search(
        ctx: Context[Any],
        query: str,
        limit: int = 10,
        video_id: str | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """Sections of summarized videos that bear on the query (a question or words),
        best first, each with the video, its time (seconds), a snippet, and a link to the
        moment. ``limit``: 1 to 100; ``mode``: words, meaning or hybrid (the default when
        the library has vectors). How it searched comes as a log message."""
        from yttl.embed.indexing import query_vector

        if not 1 <= limit <= MAX_LIMIT:
            raise _refuse(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
        if not query.strip():
            raise _refuse("query is empty: give the words to look for")
        if mode not in (None, "words", "meaning", "hybrid"):
            raise _refuse(f"mode must be words, meaning or hybrid, not {mode!r}")
        found = library()
        plan = await query_vector(found, shared.embeddings, query, mode)
        await ctx.info(f"searched {plan.why}")
        hits = await asyncio.to_thread(
            functools.partial(
                found.search,
                query,
                limit=limit,
                video=video_id,
                mode=plan.mode,
                vector=plan.vector,
                model=plan.model,
            )
        )
        return [hit.as_dict() for hit in hits]

    @server.tool()
    @_checked
    def list_videos() -> list[dict[str, Any]]:
        """Every video in the library: id, title, url, duration, model, sections."""
        return library().videos()

    @server.tool()
    @_checked
    def get_summary(video_id: str, format: str = "md") -> str:
        """A video's summary: Markdown (format "md") or the JSON document ("json")."""
        if format not in FORMATS:
            raise _refuse(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        document = library().document(video_id)
        if format == "json":
            import json

            return json.dumps(document, ensure_ascii=False)
        from yttl.render.markdown import markdown_from_view

        return markdown_from_view(document)

    @server.tool()
    @_checked
    def get_transcript(video_id: str, start: float = 0.0, end: float | None = None) -> str:
        """What was said between start and end (seconds), one line per segment."""
        if start < 0 or (end is not None and end <= start):
            raise _refuse(f"the range must have 0 <= start < end, not {start}..{end}")
        found = library()
        segments = found.transcript(video_id, start, end)
        if not segments and not found.transcript(video_id):
            raise _refuse(
                f"the library has no transcript of {video_id!r} (it was taken in "
                "from a summary alone); get_summary has its summaries"
            )
        return "\n".join(f"[{format_clock(s.start)}] {s.text}" for s in segments)

    @server.tool()
    @_checked_async
    async def ask(
        question: str, video_id: str | None = None, thread: str | None = None
    ) -> dict[str, Any]:
        """An answer to the question from one video (video_id) or the whole library, with
        the moments it cites (each checked against what the answer was drawn from), or a
        statement that the videos do not contain it. The answer comes with its ``thread``:
        pass it back as ``thread`` to ask a follow-up, read in the light of the earlier
        questions and answers ("and who ran it?"), from the same videos."""
        from yttl.chat import open_thread, reply
        from yttl.library.chats import ChatStore

        if not question.strip():
            raise _refuse("question is empty")
        store = ChatStore(library())
        if thread:
            found = await asyncio.to_thread(store.get, thread)
            if found is None:
                raise _refuse(f"no chat thread {thread!r}: leave thread out to start one")
            if video_id and video_id not in found.video_ids:
                raise _refuse(
                    f"thread {thread!r} is not about {video_id!r}: leave video_id out to "
                    "follow up, or thread out to start one"
                )
        else:
            found = await asyncio.to_thread(open_thread, store, [video_id] if video_id else None)
        components = await shared.for_run()
        result = await reply(store, found, question, settings, components=components)
        return result.as_dict()

    @server.tool()
    @_checked_async
    async def summarize(source: str, ctx: Context[Any]) -> dict[str, Any]:
        """Summarize a video (a URL, a media file path, or a yt-dlp info.json) and add it
        to the library; progress comes as notifications."""
        from yttl.jobs import local_sources_exist, run_sources

        if not source.strip():
            raise _refuse("source is empty: give a URL, a media file or an info.json")
        local_sources_exist([source])  # before any model is loaded or fetched
        progress = _Progress(ctx)
        # Model loading and downloads run off this loop, so other tools answer meanwhile.
        observer = _BatchProgress(progress)
        stop = asyncio.Event()
        components = await shared.for_run(stop)
        run = await run_sources(
            [source],
            settings,
            stop=stop,
            components=components,
            observe=lambda _: contextlib.nullcontext(observer),
        )
        await progress.flush()
        outcome = run.outcomes[0]
        if outcome.result is None:
            if outcome.error is not None:
                raise outcome.error
            raise _refuse(f"{source}: nothing was made")
        result = outcome.result
        return {
            "video_id": result.video.id,
            "title": result.video.title,
            "status": outcome.status,
            "outputs": [str(p) for p in outcome.outputs],
            "error": tool_error_line(outcome.error) if outcome.error else None,
            "failures": [f"{f.where}: {f.message}" for f in result.failures],
        }

    return server
