"""The pages of ``yttl serve``: the library, a video, search, jobs, and the login form.
Server-rendered with Jinja2 (autoescaped); htmx (vendored) swaps parts of them in place;
every timestamp is a link to the moment that the page's player intercepts to seek."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from yttl._version import __version__
from yttl.ask import video_of
from yttl.errors import InputError, UsageError, YttlError
from yttl.messages import error_line
from yttl.render.html import safe_url
from yttl.render.jsonout import first_sentence
from yttl.render.links import format_clock, timestamp_url
from yttl.serve.chat_pages import chat_view
from yttl.serve.security import local_path
from yttl.serve.sessions import csrf_field, signed_in, start_session
from yttl.serve.state import ServerState, youtube_id

__all__ = ["login_page", "page_routes", "templates"]


@functools.cache
def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("yttl.serve", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.globals.update(
        clock=format_clock,
        first_sentence=first_sentence,
        version=__version__,
        signed_in=signed_in,
        csrf_field=csrf_field,
    )
    return env


def _render(template: str, code: int = 200, **view: Any) -> HTMLResponse:
    return HTMLResponse(templates().get_template(template).render(**view), status_code=code)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.yttl
    return state


def login_page(scope: Scope, problem: str | None) -> Response:
    """The form a browser without a session gets instead of any page."""
    return _render("login.html.j2", 401, problem=problem, target=local_path(scope["path"]))


async def login(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    token, target = str(form.get("token", "")).strip(), str(form.get("next", "/"))
    client = request.client.host if request.client else "?"
    if state.guard.too_many_failures(client):
        return _render(
            "login.html.j2", 429, problem="too many failed logins; wait a minute", target=target
        )
    if not state.guard.token_matches(token):
        state.guard.failed(client)
        return _render(
            "login.html.j2", 401, problem="that token is not this server's", target=target
        )
    response = RedirectResponse(local_path(target), status_code=303)
    start_session(response, state.guard.sessions, request.scope)
    return response


PAGE_SIZE = 100


async def library_page(request: Request) -> Response:
    library = _state(request).library
    channel = request.query_params.get("channel") or None
    status = request.query_params.get("status") or None
    try:
        page = min(max(1, int(request.query_params.get("page", "1"))), 1_000_000)
    except ValueError:
        page = 1

    def read() -> tuple[list[dict[str, Any]], int, int, list[str]]:
        shown = library.videos(
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, channel=channel, status=status
        )
        return (
            shown,
            library.count(channel=channel, status=status),
            library.count(),
            library.channels(),
        )

    videos, matching, total, channels = await asyncio.to_thread(read)
    pages = max(1, -(-matching // PAGE_SIZE))
    chat = await chat_view(_state(request), request.query_params.get("chat"), None)
    return _render(
        "library.html.j2",
        videos=videos,
        total=total,
        matching=matching,
        channels=channels,
        channel=channel,
        status=status,
        page=page,
        pages=pages,
        nav="library",
        chat=chat,
    )


def _player(document: dict[str, Any]) -> dict[str, str] | None:
    video = document["video"]
    if video.get("source") == "file":
        return {"kind": "file", "src": f"/media/{video['id']}"}
    youtube = youtube_id(video.get("url") or "")
    if youtube is not None or str(video.get("extractor", "")).lower().startswith("youtube"):
        return {"kind": "youtube", "id": youtube or video["id"]}
    return None


async def _document(request: Request) -> dict[str, Any] | Response:
    """The video's document, or the page that says it is not in the library."""
    try:
        document: dict[str, Any] = await asyncio.to_thread(
            _state(request).library.document, request.path_params["id"]
        )
    except InputError as exc:
        return _render(
            "message.html.j2",
            404,
            title="Not in the library",
            message=error_line(exc),
            nav="library",
        )
    return document


async def video_page(request: Request) -> Response:
    document = await _document(request)
    if isinstance(document, Response):
        return document
    chat = await chat_view(
        _state(request), request.query_params.get("chat"), document["video"]["id"]
    )
    return _render(
        "video.html.j2",
        doc=document,
        video=document["video"],
        hours=document["hours"],
        player=_player(document),
        nav="library",
        slides=_slides(document),
        chat=chat,
    )


def _slides(document: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Each section's slides, their images served by ``/slides/{id}/{n}``."""
    from yttl.render.jsonout import section_slides

    number = {id(s): n for n, s in enumerate(document.get("slides") or [])}
    quoted = quote(document["video"]["id"], safe="")
    return {
        key: [{**s, "src": f"/slides/{quoted}/{number[id(s)]}"} for s in slides]
        for key, slides in section_slides(document).items()
    }


async def slide_image(request: Request) -> Response:
    """A slide's image: only a file the pipeline wrote and the library recorded."""
    try:
        number = int(request.path_params["n"])
    except ValueError:
        return Response("no such slide", status_code=404)
    path: Path | None = await asyncio.to_thread(
        _state(request).library.slide_image, request.path_params["id"], number
    )
    if path is None:
        return Response("no such slide", status_code=404)
    return FileResponse(path)


async def transcript_fragment(request: Request) -> Response:
    """A video's transcript: loaded after the page has painted (ten hours are 1,800 lines)."""
    document = await _document(request)
    if isinstance(document, Response):
        return document
    segments = await asyncio.to_thread(
        _state(request).library.transcript, request.path_params["id"]
    )
    video = video_of(document)
    return _render(
        "_transcript.html.j2", lines=segments, link=lambda seconds: timestamp_url(video, seconds)
    )


async def ask_fragment(request: Request) -> Response:
    """The answer to the video page's ask box, as the part of the page it fills."""
    from yttl.ask import ask

    state, video_id = _state(request), request.path_params["id"]
    form = await request.form()
    question = str(form.get("question", "")).strip()
    if not question:
        return _render("_answer.html.j2", problem="Ask a question first.", answer=None)
    try:
        components = await state.ask_components()
        answer = await ask(
            state.library, video_id or None, question, state.settings, components=components
        )
    except YttlError as exc:
        return _render("_answer.html.j2", problem=error_line(exc), answer=None)
    return _render("_answer.html.j2", problem=None, answer=answer)


async def search_page(request: Request) -> Response:
    from yttl.serve.api import search_library

    query = request.query_params.get("q", "").strip()
    searched, hits = (await search_library(_state(request), query, 30, None) if query
                      else ("", []))  # fmt: skip
    return _render("search.html.j2", q=query, hits=hits, searched=searched, nav="search")


async def jobs_page(request: Request) -> Response:
    state = _state(request)
    stored = await asyncio.to_thread(state.jobs.store.all, 50)
    jobs = [(state.jobs.live(j.id) or j).as_dict() for j in stored]
    return _render("jobs.html.j2", jobs=jobs, nav="jobs", problem=None, profiles=_profiles(state))


def _profiles(state: ServerState) -> list[str]:
    """The providers a job may choose: the server's own first (""), then the others."""
    return ["", "openai", "groq", "local", *state.settings.profiles]


async def submit_job(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    sources = [line.strip() for line in str(form.get("sources", "")).splitlines() if line.strip()]
    options: dict[str, Any] = {}
    for name in ("summary_language", "sections", "profile"):
        value = str(form.get(name, "")).strip()
        if value:
            options[name] = value
    if form.get("transcript_only"):
        options["transcript_only"] = True
    if form.get("slides"):
        options["slides"] = True
    try:
        await state.jobs.submit(sources, options)
    except UsageError as exc:
        stored = await asyncio.to_thread(state.jobs.store.all, 50)
        return _render(
            "jobs.html.j2",
            400,
            jobs=[j.as_dict() for j in stored],
            nav="jobs",
            problem=error_line(exc),
            profiles=_profiles(state),
        )
    return RedirectResponse("/jobs", status_code=303)


async def job_action(request: Request) -> Response:
    state, job_id, action = _state(request), request.path_params["id"], request.path_params["do"]
    if action == "cancel":
        await state.jobs.cancel(job_id)
    elif action == "retry":
        await state.jobs.retry(job_id)
    else:
        return Response(status_code=404)
    return RedirectResponse("/jobs", status_code=303)


async def media(request: Request) -> Response:
    """A local video's own file, with range requests, for the page's player: only a file
    the library holds as a video's source, never a path a request names."""
    path: Path | None = await asyncio.to_thread(
        _state(request).library.media, request.path_params["id"]
    )
    if path is None:
        return Response("no local file for this video", status_code=404)
    return FileResponse(path)


def page_routes() -> list[Route]:
    return [
        Route("/", library_page),
        Route("/login", login, methods=["POST"]),
        Route("/v/{id}", video_page),
        Route("/v/{id}/ask", ask_fragment, methods=["POST"]),
        Route("/v/{id}/transcript", transcript_fragment),
        Route("/ask", ask_fragment, methods=["POST"]),
        Route("/search", search_page),
        Route("/jobs", jobs_page),
        Route("/jobs", submit_job, methods=["POST"]),
        Route("/jobs/{id}/{do}", job_action, methods=["POST"]),
        Route("/media/{id}", media),
        Route("/slides/{id}/{n}", slide_image),
    ]
