"""The JSON API under ``/api/v1`` (DESIGN §3): jobs and their events, the library,
search, questions, and the extension's lookup."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from yttl.errors import InputError, UsageError, YttlError
from yttl.library import Hit
from yttl.messages import error_line
from yttl.serve.state import ServerState, youtube_id

__all__ = ["api_routes", "search_library"]

MAX_LIMIT = 100


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.yttl
    return state


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise UsageError("the body must be a JSON object")
    return body


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job["id"],
        "status": job["status"],
        "sources": job["sources"],
        "options": job["options"],
        "videos": job["videos"],
        "error": job["error"],
        "created": job["created"],
        "updated": job["updated"],
    }


async def create_job(request: Request) -> Response:
    body = await _body(request)
    sources, options = body.get("sources"), body.get("options") or {}
    if isinstance(sources, str):
        sources = [line for line in sources.splitlines() if line.strip()]
    if not isinstance(sources, list) or not isinstance(options, dict):
        raise UsageError('give {"sources": [URL or path, ...], "options": {...}}')
    job = await _state(request).jobs.submit(sources, options)
    return JSONResponse({"id": job.id, "status": job.status}, status_code=202)


async def list_jobs(request: Request) -> Response:
    state = _state(request)
    stored = await asyncio.to_thread(state.jobs.store.all)
    jobs = [(state.jobs.live(j.id) or j).as_dict() for j in stored]
    return JSONResponse([_job_view(j) for j in jobs])


async def get_job(request: Request) -> Response:
    state, job_id = _state(request), request.path_params["id"]
    job = state.jobs.live(job_id) or await asyncio.to_thread(state.jobs.store.get, job_id)
    if job is None:
        return _error(404, f"no job {job_id!r}")
    return JSONResponse(_job_view(job.as_dict()))


async def cancel_job(request: Request) -> Response:
    job = await _state(request).jobs.cancel(request.path_params["id"])
    if job is None:
        return _error(404, f"no job {request.path_params['id']!r}")
    return JSONResponse(_job_view(job.as_dict()))


async def retry_job(request: Request) -> Response:
    job = await _state(request).jobs.retry(request.path_params["id"])
    if job is None:
        return _error(404, f"no job {request.path_params['id']!r}")
    return JSONResponse({"id": job.id, "status": job.status}, status_code=202)


async def job_events(request: Request) -> Response:
    state, job_id = _state(request), request.path_params["id"]
    if (
        state.jobs.live(job_id) is None
        and await asyncio.to_thread(state.jobs.store.get, job_id) is None
    ):
        return _error(404, f"no job {job_id!r}")

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for kind, data in state.jobs.events(job_id):
            yield {"event": kind, "data": json.dumps(data, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)


async def list_videos(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(_state(request).library.videos))


async def get_video(request: Request) -> Response:
    document = await asyncio.to_thread(_state(request).library.document, request.path_params["id"])
    return JSONResponse(document)


def _limit(value: str | None, default: int = 10) -> int:
    try:
        limit = int(value) if value is not None else default
    except ValueError as exc:
        raise UsageError(f"limit must be a number, not {value!r}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return limit


async def search(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    if not query:
        raise UsageError("give the words to look for: ?q=")
    limit = _limit(request.query_params.get("limit"))
    mode = request.query_params.get("mode")
    if mode not in (None, "", "words", "meaning", "hybrid"):
        raise UsageError("mode must be words, meaning or hybrid")
    searched, hits = await search_library(_state(request), query, limit, mode or None)
    # the hits stay a list (as yttl search --json); how they were found is a header
    return JSONResponse([hit.as_dict() for hit in hits], headers={"X-Yttl-Search": searched})


async def search_library(
    state: ServerState, query: str, limit: int, mode: str | None
) -> tuple[str, list[Hit]]:
    """By words and meaning (hybrid) when the library has vectors, as ``yttl search``:
    how it searched (one line, as ``yttl search`` says it), and the hits."""
    from yttl.embed.indexing import query_vector

    plan = await query_vector(state.library, state.embeddings, query, mode)
    find = functools.partial(
        state.library.search,
        query,
        limit=limit,
        mode=plan.mode,
        vector=plan.vector,
        model=plan.model,
    )
    return f"searched {plan.why}", await asyncio.to_thread(find)


async def ask(request: Request) -> Response:
    from yttl.ask import ask as answer

    body = await _body(request)
    question, video_id = body.get("question"), body.get("video_id")
    if not isinstance(question, str) or not question.strip():
        raise UsageError('give {"question": "...", "video_id": optional}')
    if video_id is not None and not isinstance(video_id, str):
        raise UsageError("video_id must be a string")
    state = _state(request)
    components = await state.ask_components()
    result = await answer(
        state.library, video_id, question.strip(), state.settings, components=components
    )
    return JSONResponse(result.as_dict())


async def lookup(request: Request) -> Response:
    url = request.query_params.get("url", "")
    video_id = youtube_id(url)
    if video_id is None:
        raise UsageError("not a YouTube video URL")
    library = _state(request).library

    def known() -> bool:
        try:
            library.document(video_id)
        except InputError:
            return False
        return True

    in_library = await asyncio.to_thread(known)
    return JSONResponse(
        {
            "video_id": video_id,
            "in_library": in_library,
            "page": f"/v/{video_id}" if in_library else None,
        }
    )


def _guarded(handler: Any) -> Any:
    """yttl's errors as JSON with the right status: 400 for a bad request, 404 for
    something not there, 502 when a provider failed."""

    async def call(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except UsageError as exc:
            return _error(400, error_line(exc))
        except InputError as exc:
            status = 404 if exc.message.startswith("no video") else 400
            return _error(status, error_line(exc))
        except YttlError as exc:
            return _error(502, error_line(exc))

    return call


def api_routes() -> list[Route]:
    routes = [
        ("/jobs", create_job, ["POST"]),
        ("/jobs", list_jobs, ["GET"]),
        ("/jobs/{id}", get_job, ["GET"]),
        ("/jobs/{id}", cancel_job, ["DELETE"]),
        ("/jobs/{id}/retry", retry_job, ["POST"]),
        ("/jobs/{id}/events", job_events, ["GET"]),
        ("/videos", list_videos, ["GET"]),
        ("/videos/{id}", get_video, ["GET"]),
        ("/search", search, ["GET"]),
        ("/ask", ask, ["POST"]),
        ("/lookup", lookup, ["GET"]),
    ]
    return [
        Route(f"/api/v1{path}", _guarded(handler), methods=methods)
        for path, handler, methods in routes
    ]
