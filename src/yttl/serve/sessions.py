"""Browser sessions of ``yttl serve``: a random id kept in the server's memory, never the
token or anything made from it, with a CSRF token of its own.

Cookies ignore ports, so every web server on 127.0.0.1 that the browser visits receives
the session cookie: it is therefore named with the port (as Jupyter names its cookies),
ends when idle for hours, ends at ``POST /logout``, and ends with the process (a
``--new-token`` start ends every session). The CSRF token lives in the page (a meta tag
and a hidden field of each form), where no other port can read it.
"""

from __future__ import annotations

import contextvars
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "IDLE_SECONDS",
    "MAX_SECONDS",
    "Session",
    "SessionStore",
    "cookie_name",
    "csrf_field",
    "csrf_token",
    "current_csrf",
    "logout",
    "start_session",
]

IDLE_SECONDS = 8 * 3600  # a session unused this long is over
MAX_SECONDS = 7 * 24 * 3600  # and none lasts longer than this, used or not
CSRF_FIELD = "_csrf"  # a form's hidden field
CSRF_HEADER = "x-yttl-csrf"  # htmx and the pages' fetch calls send it

# The CSRF token of the request being answered, for the templates (set by the middleware
# for the length of one request; a page outside a session renders it empty).
current_csrf: contextvars.ContextVar[str] = contextvars.ContextVar("yttl_csrf", default="")


def csrf_token() -> str:
    return current_csrf.get()


def csrf_field() -> Markup:
    """The hidden field every form that posts carries (``{{ csrf_field() }}``)."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_token())


@dataclass
class Session:
    csrf: str
    started: float
    seen: float


@dataclass
class SessionStore:
    """The server's sessions, in memory: a restart signs every browser out."""

    idle: float = IDLE_SECONDS
    longest: float = MAX_SECONDS
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, Session] = field(default_factory=dict)

    def start(self) -> str:
        now = self.clock()
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(secrets.token_urlsafe(32), now, now)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id (its idle clock restarted), else None."""
        if not session_id:
            return None
        now = self.clock()
        for known in [k for k, s in self._sessions.items() if self._over(s, now)]:
            del self._sessions[known]
        for known, session in self._sessions.items():
            if hmac.compare_digest(known.encode(), session_id.encode()):
                session.seen = now
                return session
        return None

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def end_all(self) -> None:
        self._sessions.clear()

    def _over(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.started > self.longest


def cookie_name(scope: Scope) -> str:
    """``yttl_session_PORT``: a server on another port keeps its own cookie apart."""
    server = scope.get("server") or ("", 0)
    return f"yttl_session_{server[1] or 0}"


def start_session(response: Response, store: SessionStore, scope: Scope) -> None:
    response.set_cookie(
        cookie_name(scope), store.start(), httponly=True, samesite="strict", path="/"
    )


async def logout(request: Request) -> Response:
    """``POST /logout`` (the middleware has checked its Origin and CSRF token)."""
    from yttl.serve.state import ServerState

    state: ServerState = request.app.state.yttl
    name = cookie_name(request.scope)
    state.guard.sessions.end(request.cookies.get(name))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(name, path="/", httponly=True, samesite="strict")
    return response
