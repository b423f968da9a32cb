"""``yttl serve`` against the other web servers of the user's own machine (issue 30,
DESIGN §3 "yttl serve"): each rule with a test that fails without it. The attacks in a
real browser are in test_serve_attacks.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support.chat import chat_library
from tests.support.server import LoopbackServer
from tests.test_serve import (
    BASE,
    BEARER,
    COOKIE,
    NAVIGATION,
    ORIGIN,
    TOKEN,
    _session,
    _settings,
)
from yttl.config import Settings
from yttl.library import Library
from yttl.serve import build_app
from yttl.serve.pages import login_page
from yttl.serve.security import Guard, SecurityMiddleware
from yttl.serve.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parts(server: LoopbackServer, tmp_path: Path, clock: Clock) -> tuple[Settings, Library, Guard]:
    guard = Guard(TOKEN, sessions=SessionStore(clock=clock))
    return _settings(server, tmp_path), Library(tmp_path / "library.sqlite"), guard


@pytest.fixture
def client(parts: tuple[Settings, Library, Guard]) -> Iterator[TestClient]:
    with TestClient(build_app(*parts), base_url=BASE, follow_redirects=False) as c:
        yield c


def _job(client: TestClient, headers: dict[str, str], **form: str) -> int:
    return client.post(
        "/jobs", data={"sources": "/nowhere/talk.mp4", **form}, headers=headers
    ).status_code


def test_a_form_needs_the_sessions_csrf_token_and_the_servers_origin(client: TestClient) -> None:
    cookie, csrf = _session(client)
    assert _job(client, {**cookie, **ORIGIN}) == 403  # no token
    assert _job(client, {**cookie, **ORIGIN}, _csrf="forged") == 403
    assert _job(client, {**cookie}, _csrf=csrf) == 403  # no Origin (a redirect's)
    assert _job(client, {**cookie, "Origin": "null"}, _csrf=csrf) == 403
    assert _job(client, {**cookie, "Origin": "http://127.0.0.1:9999"}, _csrf=csrf) == 403
    assert _job(client, {**cookie, **ORIGIN}, _csrf=csrf) == 303
    multipart = client.post(
        "/jobs",
        headers={**cookie, **ORIGIN},
        files={"sources": (None, "/nowhere/b.mp4"), "_csrf": (None, csrf)},
    )
    assert multipart.status_code == 303
    htmx = client.post(
        "/jobs",
        data={"sources": "/nowhere/c.mp4"},
        headers={**cookie, **ORIGIN, "X-YTTL-CSRF": csrf},
    )
    assert htmx.status_code == 303
    jobs = client.get("/api/v1/jobs", headers=BEARER).json()
    assert len(jobs) == 3  # the refused ones made nothing
    page = client.get("/jobs", headers=cookie).text
    assert page.count(f'name="_csrf" value="{csrf}"') >= 2  # the new-job form and sign out


def test_sessions_are_random_end_idle_and_at_sign_out(client: TestClient, clock: Clock) -> None:
    cookie, csrf = _session(client)
    assert client.get("/api/v1/videos", headers=cookie).status_code == 200
    clock.now += 7 * 3600  # used within the idle time: still on
    assert client.get("/api/v1/videos", headers=cookie).status_code == 200
    clock.now += 8 * 3600 + 1  # then idle for longer
    assert client.get("/api/v1/videos", headers=cookie).status_code == 401
    cookie, csrf = _session(client)
    page = client.get("/", headers=cookie)
    assert 'data-yttl="logout"' in page.text and 'action="/logout"' in page.text
    assert client.post("/logout", headers={**cookie, **ORIGIN}).status_code == 403  # CSRF
    out = client.post("/logout", data={"_csrf": csrf}, headers={**cookie, **ORIGIN})
    assert out.status_code == 303 and f"{COOKIE}=" in out.headers["set-cookie"]
    assert client.get("/api/v1/videos", headers=cookie).status_code == 401
    assert client.get("/", headers=cookie).status_code == 401  # the login form again


def test_a_session_lasts_a_week_at_most_even_when_used(client: TestClient, clock: Clock) -> None:
    cookie, _ = _session(client)
    for _ in range(7 * 4):
        clock.now += 6 * 3600
        assert client.get("/api/v1/videos", headers=cookie).status_code == 200
    clock.now += 6 * 3600
    assert client.get("/api/v1/videos", headers=cookie).status_code == 401


def test_the_cookie_of_another_port_is_not_this_servers(client: TestClient) -> None:
    answer = client.get(f"/?token={TOKEN}", headers=NAVIGATION)
    client.cookies.clear()
    value = answer.cookies[COOKIE]
    assert (
        client.get("/api/v1/videos", headers={"Cookie": f"yttl_session={value}"}).status_code == 401
    )
    derived = hmac.new(TOKEN.encode(), b"yttl serve session", hashlib.sha256).hexdigest()
    assert (
        client.get("/api/v1/videos", headers={"Cookie": f"{COOKIE}={derived}"}).status_code == 401
    )


@pytest.mark.parametrize(
    "path", ["/", "/jobs", "/nope", "/v/missing", "/static/app.css", "/api/v1/videos"]
)
def test_every_answer_has_the_csp_and_no_framing(client: TestClient, path: str) -> None:
    cookie, _ = _session(client)
    for headers in (cookie, {}, {**cookie, "Host": "evil.example"}):
        answer = client.get(path, headers=headers)
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
        assert "https://www.youtube-nocookie.com" in csp.split("frame-src", 1)[1].split(";")[0]
        assert answer.headers["x-frame-options"] == "DENY"


def test_the_pages_have_no_inline_script_and_htmx_runs_without_eval(client: TestClient) -> None:
    cookie, _ = _session(client)
    page = client.get("/jobs", headers=cookie).text
    assert '"allowEval": false' in page and '"includeIndicatorStyles": false' in page
    assert "<script>" not in page and " style=" not in page and "<style" not in page


def test_another_site_cannot_lock_the_user_out(client: TestClient) -> None:
    """Six <img src="http://127.0.0.1:8765/?token=wrongN"> from any page, then the user's
    own login link."""
    for n in range(10):
        img = {
            "Sec-Fetch-Site": "same-site",
            "Sec-Fetch-Mode": "no-cors",
            "Sec-Fetch-Dest": "image",
        }
        assert client.get(f"/?token=wrong{n}", headers=img).status_code == 403
        link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        assert client.get(f"/?token=wrong{n}", headers=link).status_code == 403
        assert (
            client.post(
                "/login", data={"token": f"wrong{n}"}, headers={"Origin": "http://127.0.0.1:9999"}
            ).status_code
            == 403
        )
    assert client.get(f"/?token={TOKEN}", headers=NAVIGATION).status_code == 303


def test_wrong_bearer_tokens_are_rate_limited(client: TestClient) -> None:
    for n in range(5):
        wrong = {"Authorization": f"Bearer wrong{n}"}
        assert client.get("/api/v1/videos", headers=wrong).status_code == 401
    assert client.get("/api/v1/videos", headers={"Authorization": "Bearer x"}).status_code == 429


@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "///evil.example"])
def test_the_login_url_sends_the_browser_to_a_local_path_only(
    client: TestClient, path: str
) -> None:
    answer = client.get(f"{BASE}{path}?token={TOKEN}", headers=NAVIGATION)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


def test_the_challenge_proves_the_token_without_showing_it(client: TestClient) -> None:
    nonce = "n" * 32
    answer = client.post("/api/v1/challenge", json={"nonce": nonce})
    assert answer.status_code == 200 and TOKEN not in answer.text
    message = f"yttl serve challenge\n8765\n{nonce}".encode()
    assert answer.json()["proof"] == hmac.new(TOKEN.encode(), message, hashlib.sha256).hexdigest()
    assert client.post("/api/v1/challenge", json={"nonce": ""}).status_code == 400


def test_a_media_path_named_by_an_imported_json_is_not_served(
    client: TestClient, parts: tuple[Settings, Library, Guard], tmp_path: Path
) -> None:
    secret = tmp_path / "config" / "yttl" / "serve-token"
    secret.parent.mkdir(parents=True)
    secret.write_text(TOKEN)
    imported = tmp_path / "imported"
    imported.mkdir()
    document = {
        "video": {"id": "evil", "title": "Evil", "source": "file", "url": secret.as_uri()},
        "hours": [],
    }
    (imported / "evil.json").write_text(json.dumps(document))
    (imported / "evil.media").symlink_to(secret)  # a sibling whose suffix is "media" too
    _, library, _ = parts
    assert library.import_outputs(imported)[0] == 1
    cookie, _ = _session(client)
    answer = client.get("/media/evil", headers=cookie)
    assert answer.status_code == 404 and TOKEN not in answer.text


WS = "ws://127.0.0.1:8765/ws"


def _socket_app(guard: Guard) -> Any:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    return SecurityMiddleware(app, guard, login_page)


def test_websockets_pass_the_same_checks() -> None:
    guard = Guard(TOKEN)
    with TestClient(_socket_app(guard), base_url=BASE) as client:
        with client.websocket_connect(WS, headers=BEARER) as socket:
            assert socket.receive_text() == "hello"
        refused: list[dict[str, str]] = [
            {},  # nobody
            {"Authorization": "Bearer wrong"},
            {**BEARER, "Host": "evil.example"},
            {"Cookie": f"{COOKIE}=made-up"},
        ]
        session = guard.sessions.start()
        with client.websocket_connect(
            WS, headers={"Cookie": f"{COOKIE}={session}", **ORIGIN}
        ) as socket:
            assert socket.receive_text() == "hello"
        refused.append({"Cookie": f"{COOKIE}={session}", "Origin": "http://127.0.0.1:9999"})
        for headers in refused:
            with pytest.raises(WebSocketDisconnect), client.websocket_connect(WS, headers=headers):
                pass


def test_the_chat_api_takes_a_sessions_request_only_with_its_csrf_token_and_origin(
    client: TestClient, parts: tuple[Settings, Library, Guard]
) -> None:
    """The chat that the pages' chat.js drives passes the same checks as every form."""
    chat_library(parts[1].path)
    cookie, csrf = _session(client)
    body = {"all": True}
    assert client.post("/api/v1/chats", json=body, headers={**cookie, **ORIGIN}).status_code == 403
    forged = {**cookie, **ORIGIN, "X-YTTL-CSRF": "forged"}
    assert client.post("/api/v1/chats", json=body, headers=forged).status_code == 403
    no_origin = {**cookie, "X-YTTL-CSRF": csrf}
    assert client.post("/api/v1/chats", json=body, headers=no_origin).status_code == 403
    other = {**cookie, "Origin": "http://127.0.0.1:9999", "X-YTTL-CSRF": csrf}
    assert client.post("/api/v1/chats", json=body, headers=other).status_code == 403
    assert client.get("/api/v1/chats", headers=BEARER).json() == []  # nothing was made
    made = client.post(
        "/api/v1/chats", json=body, headers={**cookie, **ORIGIN, "X-YTTL-CSRF": csrf}
    )
    assert made.status_code == 201
    chat = made.json()["id"]
    asked = client.post(
        f"/api/v1/chats/{chat}/messages", json={"content": "hello?"}, headers={**cookie, **ORIGIN}
    )
    assert asked.status_code == 403  # the question too needs the token
    assert client.post("/api/v1/chats", json=body, headers=BEARER).status_code == 201
