"""The Starlette app of ``yttl serve``: the pages, the API, the vendored static files,
all behind ``SecurityMiddleware`` (every route added here inherits its checks, the CSP
and the CSRF token of its templates); jobs left unfinished by a previous run resume at
start-up."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from yttl.config import Settings
from yttl.embed.factory import embedder_holder
from yttl.library import Library
from yttl.library.jobs import JobStore
from yttl.serve.api import api_routes
from yttl.serve.chat_api import chat_routes
from yttl.serve.jobs import JobManager
from yttl.serve.pages import login_page, page_routes
from yttl.serve.security import Guard, SecurityMiddleware
from yttl.serve.sessions import logout
from yttl.serve.state import ServerState
from yttl.serve.tokens import proof

__all__ = ["build_app"]

STATIC = Path(__file__).parent / "static"


def build_app(settings: Settings, library: Library, guard: Guard) -> Starlette:
    """The app for ``settings`` (whose run options are the defaults of its jobs); its jobs
    record into ``library``."""
    settings = dataclasses.replace(settings, library=True, library_path=str(library.path))
    embeddings = embedder_holder(settings)
    jobs = JobManager(settings, JobStore(library), embeddings)
    state = ServerState(settings, library, jobs, guard, Path(settings.output_dir), embeddings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await jobs.start()
        try:
            yield
        finally:
            await state.close()

    app = Starlette(
        routes=[
            *api_routes(),
            *chat_routes(),
            *page_routes(),
            Route("/logout", logout, methods=["POST"]),
            Route("/api/v1/challenge", challenge, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityMiddleware, guard=guard, login_page=login_page)],
        lifespan=lifespan,
    )
    app.state.yttl = state
    return app


CHALLENGE_BYTES = 4096  # a nonce of 256 characters in JSON; anyone may ask, unsigned in


async def challenge(request: Request) -> Response:
    """``{"nonce"}`` → ``{"proof"}``: HMAC(token, port and nonce), which shows the native
    host that this server holds the token without showing the token (DESIGN §3). Its
    body is read only up to a few kB: any page may post here without signing in."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > CHALLENGE_BYTES:
            return JSONResponse({"error": "a challenge is a short nonce"}, status_code=413)
    try:
        nonce = json.loads(body)["nonce"]
    except (ValueError, KeyError, TypeError, RecursionError):
        nonce = None
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 256:
        return JSONResponse({"error": 'give {"nonce": "16 to 256 characters"}'}, status_code=400)
    state: ServerState = request.app.state.yttl
    port = int((request.scope.get("server") or ("", 0))[1] or 0)
    return JSONResponse({"proof": proof(state.guard.current_token(), nonce, port)})
