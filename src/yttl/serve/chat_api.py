"""The chat API under ``/api/v1/chats`` (DESIGN §3 "Chat"): threads kept in the library,
and answers sent as server-sent events while the model writes them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from yttl.chat import ChatReply, open_thread, reply
from yttl.errors import UsageError, YttlError
from yttl.library.chats import ChatStore
from yttl.messages import error_line
from yttl.serve.api import _body, _error, _guarded, _state
from yttl.serve.state import ServerState

__all__ = ["chat_events", "chat_routes", "done_event"]

logger = logging.getLogger(__name__)
MAX_QUESTION = 4000
BUSY = "this thread is answering another question: ask again when that answer is done"


def _store(request: Request) -> ChatStore:
    return ChatStore(_state(request).library)


async def create_chat(request: Request) -> Response:
    body = await _body(request)
    video_ids, everything = body.get("video_ids"), body.get("all")
    if everything is True and not video_ids:
        scope = None
    elif (
        isinstance(video_ids, list)
        and video_ids
        and all(isinstance(v, str) and v for v in video_ids)
        and not everything
    ):
        scope = video_ids
    else:
        raise UsageError('give {"video_ids": ["ID", ...]} or {"all": true}')
    store = _store(request)
    thread = await asyncio.to_thread(open_thread, store, scope)
    return JSONResponse({"id": thread.id}, status_code=201)


async def list_chats(request: Request) -> Response:
    video_id = request.query_params.get("video_id") or None
    threads = await asyncio.to_thread(_store(request).threads, video_id)
    return JSONResponse([t.summary() for t in threads])


async def get_chat(request: Request) -> Response:
    thread = await asyncio.to_thread(_store(request).get, request.path_params["id"])
    if thread is None:
        return _error(404, f"no chat {request.path_params['id']!r}")
    return JSONResponse(thread.as_dict())


async def delete_chat(request: Request) -> Response:
    if not await asyncio.to_thread(_store(request).delete, request.path_params["id"]):
        return _error(404, f"no chat {request.path_params['id']!r}")
    return Response(status_code=204)


def done_event(result: ChatReply) -> dict[str, Any]:
    """The ``done`` event: the stored answer, as ``yttl ask --json`` prints it."""
    view = result.answer.as_dict()
    return {
        "message_id": result.message_id,
        "question_id": result.question_id,
        "thread": result.thread_id,
        **view,
    }


async def chat_events(
    state: ServerState, chat_id: str, content: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``token`` events while the model writes, then ``done`` or ``error``; ``restart``
    when a retried attempt starts the answer again. Closing the iterator stops the call.
    One question at a time in a thread: a second one, from another tab, would be stored
    between the first and its answer, and every later follow-up would pair them wrong."""
    if chat_id in state.answering:
        yield "error", {"error": BUSY}
        return
    state.answering.add(chat_id)
    try:
        async for event in _answer_events(state, chat_id, content):
            yield event
    finally:
        state.answering.discard(chat_id)


async def _answer_events(
    state: ServerState, chat_id: str, content: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    store = ChatStore(state.library)
    thread = await asyncio.to_thread(store.get, chat_id)
    if thread is None:
        yield "error", {"error": f"no chat {chat_id!r}"}
        return
    try:
        components = await state.ask_components()  # may load the local model
    except YttlError as exc:
        yield "error", {"error": error_line(exc)}
        return
    events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def answer() -> None:
        try:
            result = await reply(
                store,
                thread,
                content,
                state.settings,
                components=components,
                on_text=lambda text: events.put_nowait(("token", {"text": text})),
                on_restart=lambda: events.put_nowait(("restart", {})),
            )
            events.put_nowait(("done", done_event(result)))
        except YttlError as exc:
            events.put_nowait(("error", {"error": error_line(exc)}))
        except Exception as exc:  # a bug: the thread still says the answer failed
            logger.exception("chat %s: the answer failed", chat_id)
            events.put_nowait(("error", {"error": f"internal error ({type(exc).__name__})"}))

    task = asyncio.create_task(answer())
    try:
        while True:
            kind, data = await events.get()
            yield kind, data
            if kind in ("done", "error"):
                return
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def post_message(request: Request) -> Response:
    body = await _body(request)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise UsageError('give {"content": "the question"}')
    if len(content) > MAX_QUESTION:
        raise UsageError(f"a question may have at most {MAX_QUESTION} characters")
    state, chat_id = _state(request), request.path_params["id"]
    if await asyncio.to_thread(ChatStore(state.library).get, chat_id) is None:
        return _error(404, f"no chat {chat_id!r}")
    if chat_id in state.answering:
        return _error(409, BUSY)

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for kind, data in chat_events(state, chat_id, content.strip()):
            yield {"event": kind, "data": json.dumps(data, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)


def chat_routes() -> list[Route]:
    routes = [
        ("/chats", create_chat, ["POST"]),
        ("/chats", list_chats, ["GET"]),
        ("/chats/{id}", get_chat, ["GET"]),
        ("/chats/{id}", delete_chat, ["DELETE"]),
        ("/chats/{id}/messages", post_message, ["POST"]),
    ]
    return [
        Route(f"/api/v1{path}", _guarded(handler), methods=methods)
        for path, handler, methods in routes
    ]
