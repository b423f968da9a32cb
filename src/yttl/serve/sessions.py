"""Browser sessions of ``yttl serve``: a random id kept in the server's memory, never the
token or anything made from it, with a CSRF token of its own.

Cookies ignore ports, so every web server on 127.0.0.1 that the browser visits receives
the session cookie: it is therefore named with the port (as Jupyter names its cookies),
ends when idle for hours, ends at ``POST /logout``, and ends with the process (a
``--new-token`` start ends every session). The CSRF token goes to the browser once, in
the fragment of the login's redirect, and lives in this origin's own storage: no other
port reads it, and a program replaying the cookie cannot fetch it from a page.
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
    "CSRF_FRAGMENT",
    "CSRF_HEADER",
    "IDLE_SECONDS",
    "MAX_SECONDS",
    "Session",
    "SessionStore",
    "cookie_name",
    "csrf_field",
    "current_csrf",
    "logout",
    "signed_in",
    "start_session",
]

IDLE_SECONDS = 8 * 3600  # a session unused this long is over
MAX_SECONDS = 7 * 24 * 3600  # and none lasts longer than this, used or not
CSRF_FIELD = "_csrf"  # a form's hidden field
CSRF_HEADER = "x-yttl-csrf"  # htmx and the pages' fetch calls send it

CSRF_FRAGMENT = "yttl-csrf"  # the login's redirect hands the browser the token here

# The CSRF token of the request being answered (set by the middleware for the length of
# one request; empty outside a session). Pages never show it: a program replaying the
# cookie would read it from them, and act as the user.
current_csrf: contextvars.ContextVar[str] = contextvars.ContextVar("yttl_csrf", default="")


def signed_in() -> bool:
    """Whether a session is being answered (the templates show Sign out)."""
    return bool(current_csrf.get())


def csrf_field() -> Markup:
    """The hidden field every form that posts carries (``{{ csrf_field() }}``), empty:
    ``app.js`` fills it from this origin's own storage, where the login put the token."""
    return Markup('<input type="hidden" name="{}" value="">').format(CSRF_FIELD)


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
    """The cookie, and the CSRF token in the redirect's fragment (never sent to a
    server): ``app.js`` keeps it in this origin's storage, which no other port reads and
    no replayed cookie fetches."""
    session_id = store.start()
    session = store.get(session_id)
    assert session is not None
    response.set_cookie(cookie_name(scope), session_id, httponly=True, samesite="strict", path="/")
    response.headers["location"] += f"#{CSRF_FRAGMENT}={session.csrf}"


async def logout(request: Request) -> Response:
    """``POST /logout`` (the middleware has checked its Origin and CSRF token)."""
    from yttl.serve.state import ServerState

    state: ServerState = request.app.state.yttl
    name = cookie_name(request.scope)
    state.guard.sessions.end(request.cookies.get(name))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(name, path="/", httponly=True, samesite="strict")
    return response
