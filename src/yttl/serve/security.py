"""The rules of DESIGN §3 "yttl serve", as one ASGI middleware in front of the app
(docs/security.md says what each defends against).

A local server is a door into the user's machine and wallet, and every other web server
on 127.0.0.1 is another site of the same host to the browser. For every HTTP request and
WebSocket, in order:
1. the Host header must be a loopback name (or one given with ``--allow-host``), matched
   exactly as ``name[:digits]``: a page whose DNS name is rebound to 127.0.0.1 is refused;
2. the login URL (``?token=``) trades the token for a session cookie, but only when the
   browser navigates there itself (not an ``<img>``, not a link from another site), and
   sends it on to a local path; failed logins and wrong bearer tokens are rate-limited;
3. everything else needs a live session or ``Authorization: Bearer TOKEN``: the API
   answers 401, a page shows the login form;
4. an unsafe method (POST, PUT, PATCH, DELETE) that only the cookie authenticates needs
   ``Origin`` equal to the server's own and the session's CSRF token; with the bearer
   token, a web origin other than the server's own is refused (extension origins pass);
5. the API takes JSON bodies only (415);
6. CORS headers name allowed origins only, never ``*``; every answer carries the
   Content-Security-Policy and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartParser
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yttl.serve.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    SessionStore,
    cookie_name,
    current_csrf,
    start_session,
)

__all__ = ["CSP", "LOOPBACK_HOSTS", "Guard", "SecurityMiddleware", "local_path"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://", "safari-web-extension://")
PUBLIC = ("/static/", "/favicon.ico")  # served to anyone who passes the Host check
PLAYER = "https://www.youtube-nocookie.com https://www.youtube.com"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    f"media-src 'self'; connect-src 'self'; frame-src {PLAYER}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),  # browsers without Sec-Fetch-* too
    (b"cache-control", b"no-store"),  # Back after Sign out must not show the library
]
MAX_FORM = 1 << 20  # a page's form (a job's sources, a question) is far smaller
_PORT = re.compile(r"(?::[0-9]{1,5})?")
_log = logging.getLogger("yttl.serve")


@dataclass
class Guard:
    """What the middleware checks against: the token, the names and origins allowed,
    the live sessions, the recent failures."""

    token: str
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_failed_logins: int = 5  # a minute, per client
    sessions: SessionStore = field(default_factory=SessionStore)
    token_file: Path | None = None  # followed: a --new-token run elsewhere applies here too
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = self.token_file.stat() if self.token_file else None
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns) if info else None

    def current_token(self) -> str:
        """The token, re-read when its file was replaced (``yttl serve --print-token
        --new-token`` while this server runs): the old one stops working here too, and
        every session ends, as ``--new-token`` promises."""
        stamp = self._file_stamp()
        if stamp is not None and stamp != self._stamp and self.token_file is not None:
            self._stamp = stamp
            try:
                new = self.token_file.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                new = ""
            if len(new) >= 32 and new != self.token:
                self.token = new
                self.sessions.end_all()
        return self.token

    def host_allowed(self, host: str) -> bool:
        """``name`` or ``name:digits``, the name one of ours, nothing else."""
        names = {*LOOPBACK_HOSTS, *(h.lower() for h in self.allowed_hosts)}
        host = host.lower()
        return any(host.startswith(name) and _PORT.fullmatch(host[len(name) :]) for name in names)

    def token_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode(), self.current_token().encode()
        )

    def too_many_failures(self, client: str, kind: str = "login") -> bool:
        """Logins and bearer tokens are counted apart: a script or extension still
        sending an old token must not lock the user out of their own login link."""
        recent = self._failures.get(f"{kind} {client}", deque())
        while recent and recent[0] < time.monotonic() - 60:
            recent.popleft()
        return len(recent) >= self.max_failed_logins

    def failed(self, client: str, kind: str = "login") -> None:
        self._failures.setdefault(f"{kind} {client}", deque()).append(time.monotonic())


def local_path(path: str) -> str:
    """``path`` as a path of this server: ``//evil.example/`` or ``/\\evil`` would send
    the browser to another site."""
    return "/" + path.lstrip("/\\")


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def _cookie(scope: Scope, headers: Headers) -> str | None:
    """Our session cookie, read as browsers write cookies: other ports' servers set their
    own for 127.0.0.1 too (``prefs={"a":1}``), and SimpleCookie stops at such a value."""
    return cookie_parser(headers.get("cookie", "")).get(cookie_name(scope))


def _embedded_by_another_site(headers: Headers) -> bool:
    """Another port's ``<img>``, ``<script>``, ``<link rel=prefetch>`` (which no bearer
    token can go with): its load or error event would tell whether the user is signed in
    and what the library holds, so it is refused whatever is there."""
    return (
        headers.get("sec-fetch-site") in ("same-site", "cross-site")
        and headers.get("sec-fetch-mode") not in ("navigate", "cors")
        and _bearer(headers) is None
    )


def _own_origin(scope: Scope, headers: Headers) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", ""), scope.get("scheme"))
    return f"{scheme or 'http'}://{headers.get('host', '')}"


def _client(scope: Scope) -> str:
    return str((scope.get("client") or ("?", 0))[0])


class SecurityMiddleware:
    def __init__(
        self, app: ASGIApp, guard: Guard, login_page: Callable[[Scope, str | None], Response]
    ) -> None:
        self.app = app
        self.guard = guard
        self.login_page = login_page  # the form, with what went wrong if anything

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.guard.current_token()  # a token rotated meanwhile ends the sessions first
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        send = _with_headers(send, headers.get("origin"), self.guard.allowed_origins)
        refusal, session = self._check(scope, headers)
        if refusal is None and session is not None and scope["method"] in UNSAFE:
            refusal, receive = await self._csrf(scope, headers, receive, session)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        marker = current_csrf.set(session.csrf if session else "")
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            # Starlette's own 500 goes out past this middleware (no CSP) with a traceback
            if started:
                raise
            _log.error(
                "yttl serve: %s %s failed: %s: %s",
                scope["method"],
                scope["path"],
                type(exc).__name__,
                exc,
            )
            failure = "yttl serve failed on this request; its log says why"
            await _refuse(scope["path"].startswith("/api/"), failure, 500)(scope, receive, send)
        finally:
            current_csrf.reset(marker)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same Host and sign-in checks; a browser's WebSocket has no CORS, so its
        Origin must be the server's own."""
        headers = Headers(scope=scope)
        guard = self.guard
        origin = headers.get("origin")
        signed_in = (
            guard.token_matches(_bearer(headers))
            or guard.sessions.get(_cookie(scope, headers)) is not None
        )
        if (
            not guard.host_allowed(headers.get("host", ""))
            or not signed_in
            or (
                origin is not None
                and origin != _own_origin(scope, headers)
                and not origin.startswith(EXTENSION_SCHEMES)
            )
        ):
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: Headers) -> tuple[Response | None, Session | None]:
        guard, path, method = self.guard, scope["path"], scope["method"]
        api = path.startswith("/api/")
        if not guard.host_allowed(headers.get("host", "")):
            return PlainTextResponse(
                "yttl serve: this Host is not allowed (start it with --allow-host NAME to add one)",
                status_code=403,
            ), None
        origin = headers.get("origin")
        if method == "OPTIONS" and origin:  # a CORS preflight: only for allowed origins
            if origin not in guard.allowed_origins:
                return PlainTextResponse("origin not allowed", status_code=403), None
            return _preflight(origin), None
        if _embedded_by_another_site(headers):
            return _refuse(api, "another site's page may not load this"), None
        if path.startswith(PUBLIC):
            return None, None
        if path == "/api/v1/challenge" and method == "POST":
            return None, None  # proves the token without it (the native host asks)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        client = _client(scope)
        if "token" in query and not api:
            return self._login(scope, headers, query, client), None
        bearer = _bearer(headers)
        if bearer is not None:
            if guard.too_many_failures(client, "bearer"):
                return _refuse(api, "too many wrong tokens; wait a minute", 429), None
            if not guard.token_matches(bearer):
                guard.failed(client, "bearer")
                return _refuse(api, "that token is not this server's", 401), None
            if (
                method in UNSAFE
                and origin
                and origin.startswith(("http://", "https://"))
                and origin != _own_origin(scope, headers)
                and origin not in guard.allowed_origins
            ):
                return _refuse(api, "a page of another site may not change anything here"), None
            return self._json_only(api, method, headers), None
        session = guard.sessions.get(_cookie(scope, headers))
        if session is None:
            if method == "POST" and path == "/login":
                if origin != _own_origin(scope, headers):  # nor count another site's guesses
                    return _refuse(False, "sign in from this server's own page"), None
                return None, None
            if api:
                return JSONResponse(
                    {
                        "error": "not signed in: send Authorization: Bearer "
                        "TOKEN (yttl serve --print-token)"
                    },
                    status_code=401,
                ), None
            return self.login_page(scope, None), None
        if method in UNSAFE and origin != _own_origin(scope, headers):
            # an absent or "null" Origin is what a redirect from another port produces
            return _refuse(api, "a page of another site may not change anything here"), None
        return self._json_only(api, method, headers), session

    def _json_only(self, api: bool, method: str, headers: Headers) -> Response | None:
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if api and method in ("POST", "PUT", "PATCH") and has_body:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return JSONResponse(
                    {"error": "the API takes application/json bodies"}, status_code=415
                )
        return None

    async def _csrf(
        self, scope: Scope, headers: Headers, receive: Receive, session: Session
    ) -> tuple[Response | None, Receive]:
        """The session's CSRF token, from the header or the form's hidden field (the
        body read here is handed on to the app unchanged)."""
        api = scope["path"].startswith("/api/")
        given = headers.get(CSRF_HEADER)
        if given is None:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
                body = b""
                while True:
                    message = await receive()
                    body += message.get("body", b"")
                    if len(body) > MAX_FORM:
                        return _refuse(api, "this form is too large", 413), receive
                    if not message.get("more_body", False):
                        break
                receive = _replay(body)
                given = await _form_field(headers, body)
        if given is None or not hmac.compare_digest(given.encode(), session.csrf.encode()):
            return _refuse(api, "this form is out of date: reload the page and try again"), receive
        return None, receive

    def _login(
        self, scope: Scope, headers: Headers, query: dict[str, str], client: str
    ) -> Response:
        guard = self.guard
        site, mode = headers.get("sec-fetch-site"), headers.get("sec-fetch-mode")
        if site not in (None, "none", "same-origin") or mode not in (None, "navigate"):
            # another site's link or <img>: refused, and not counted against the user
            return PlainTextResponse(
                "open the login link yourself (another site sent it)", status_code=403
            )
        if guard.too_many_failures(client):
            return PlainTextResponse("too many failed logins; wait a minute", status_code=429)
        if not guard.token_matches(query.get("token")):
            guard.failed(client)
            return self.login_page(scope, "that token is not this server's")
        rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
        target = local_path(scope["path"]) + (f"?{rest}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        start_session(response, guard.sessions, scope)
        return response


async def _form_field(headers: Headers, body: bytes) -> str | None:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    kind = headers.get("content-type", "")
    try:
        if kind.lower().startswith("multipart/form-data"):
            form = await MultiPartParser(headers, stream()).parse()
        else:
            form = await FormParser(headers, stream()).parse()
    except Exception:  # a form that cannot be read carries no token
        return None
    value = form.get(CSRF_FIELD)
    await form.close()
    return value if isinstance(value, str) else None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _refuse(api: bool, why: str, status: int = 403) -> Response:
    if api:
        return JSONResponse({"error": why}, status_code=status)
    return PlainTextResponse(why, status_code=status)


def _preflight(origin: str) -> Response:
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


def _with_headers(send: Send, origin: str | None, allowed: tuple[str, ...]) -> Send:
    """Every answer with the CSP and framing headers; CORS for allowed origins only."""
    extra = list(HEADERS)
    if origin and origin in allowed:
        extra += [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            given: list[tuple[bytes, bytes]] = list(message.get("headers", []))
            names = {name.lower() for name, _ in given}
            message = {**message, "headers": given + [h for h in extra if h[0] not in names]}
        await send(message)

    return sending


def allowed(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.rstrip("/") for v in values if v)
