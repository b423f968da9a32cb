"""The rules of DESIGN §3 "yttl serve", as one ASGI middleware in front of the app.

A local server is a door into the user's machine and wallet. In order, for every request:
1. the Host header must be a loopback name (or one given with ``--allow-host``): a page
   on another site that rebinds its DNS name to 127.0.0.1 is refused;
2. the login URL (``?token=``) trades the token for an HttpOnly, SameSite=Strict cookie
   and sends the browser to the same page without it; failed logins are rate-limited;
3. everything else needs that cookie or ``Authorization: Bearer TOKEN``: the API answers
   401, a page shows the login form;
4. an unsafe method (POST, PUT, PATCH, DELETE) is refused when ``Origin`` is a web origin
   other than the server's own, and, for a request that only the cookie authenticates,
   when ``Sec-Fetch-Site`` is ``cross-site`` (extension origins come with the bearer);
5. the API takes JSON bodies only (415);
6. CORS headers name allowed origins only, never ``*``.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yttl.serve.tokens import session_value

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "Guard", "SecurityMiddleware"]

COOKIE = "yttl_session"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://", "safari-web-extension://")
PUBLIC = ("/static/", "/favicon.ico")  # served to anyone who passes the Host check


@dataclass
class Guard:
    """What the middleware checks against: the token, the names and origins allowed."""

    token: str
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_failed_logins: int = 5  # a minute, per client
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def session(self) -> str:
        return session_value(self.token)

    def host_allowed(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower()
        return name in LOOPBACK_HOSTS or name in {h.lower() for h in self.allowed_hosts}

    def token_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def too_many_failures(self, client: str) -> bool:
        recent = self._failures.get(client, deque())
        while recent and recent[0] < time.monotonic() - 60:
            recent.popleft()
        return len(recent) >= self.max_failed_logins

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(time.monotonic())


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def _cookie(headers: Headers) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _own_origin(scope: Scope, headers: Headers) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard, *,
                 login_page: Callable[[Scope, str | None], Response]) -> None:  # fmt: skip
        self.app = app
        self.guard = guard
        self.login_page = login_page  # the form, with what went wrong if anything

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._check(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin and origin in self.guard.allowed_origins:
            send = _with_cors(send, origin)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: Headers) -> Response | None:
        guard, path, method = self.guard, scope["path"], scope["method"]
        api = path.startswith("/api/")
        if not guard.host_allowed(headers.get("host", "")):
            return PlainTextResponse("yttl serve: this Host is not allowed (start it with "
                                     "--allow-host NAME to add one)", status_code=403)  # fmt: skip
        origin = headers.get("origin")
        if method == "OPTIONS" and origin:  # a CORS preflight: only for allowed origins
            if origin not in guard.allowed_origins:
                return PlainTextResponse("origin not allowed", status_code=403)
            return _preflight(origin)
        if path.startswith(PUBLIC):
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        client = (scope.get("client") or ("?", 0))[0]
        if "token" in query and not api:
            return self._login(scope, query, client)
        bearer = _bearer(headers)
        by_bearer = guard.token_matches(bearer)
        by_cookie = hmac.compare_digest((_cookie(headers) or "").encode(), guard.session.encode())
        if bearer is not None and not by_bearer:
            guard.failed(client)
        if not (by_bearer or by_cookie):
            if api:
                return JSONResponse({"error": "not signed in: send Authorization: Bearer "
                                              "TOKEN (yttl serve --print-token)"},
                                    status_code=401)  # fmt: skip
            if method == "POST" and path == "/login":
                return None  # the login form posts here
            return self.login_page(scope, None)
        if method in UNSAFE:
            if origin and origin.startswith(("http://", "https://")) and \
                    origin != _own_origin(scope, headers) and \
                    origin not in guard.allowed_origins:  # fmt: skip
                return _refuse(api, "a page of another site may not change anything here")
            if origin and origin.startswith(EXTENSION_SCHEMES) and not by_bearer:
                return _refuse(api, "an extension must send its bearer token")
            if not by_bearer and headers.get("sec-fetch-site") == "cross-site":
                return _refuse(api, "a cross-site request may not change anything here")
            has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            if api and method in ("POST", "PUT", "PATCH") and has_body:
                kind = headers.get("content-type", "").split(";")[0].strip().lower()
                if kind != "application/json":
                    return JSONResponse({"error": "the API takes application/json bodies"},
                                        status_code=415)  # fmt: skip
        return None

    def _login(self, scope: Scope, query: dict[str, str], client: str) -> Response:
        guard = self.guard
        if guard.too_many_failures(client):
            return PlainTextResponse("too many failed logins; wait a minute", status_code=429)
        if not guard.token_matches(query.get("token")):
            guard.failed(client)
            return self.login_page(scope, "that token is not this server's")
        rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
        response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
        set_session_cookie(response, guard)
        return response


def set_session_cookie(response: Response, guard: Guard) -> None:
    response.set_cookie(COOKIE, guard.session, httponly=True, samesite="strict", path="/",
                        max_age=30 * 24 * 3600)  # fmt: skip


def _refuse(api: bool, why: str) -> Response:
    if api:
        return JSONResponse({"error": why}, status_code=403)
    return PlainTextResponse(why, status_code=403)


def _preflight(origin: str) -> Response:
    return Response(status_code=204, headers={
        "Access-Control-Allow-Origin": origin, "Vary": "Origin",
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600"})  # fmt: skip


def _with_cors(send: Send, origin: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
            headers += [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def allowed(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.rstrip("/") for v in values if v)
