"""``yttl serve`` against the other web servers of the user's own machine (issue 30,
DESIGN §3 "yttl serve"): each rule with a test that fails without it. The attacks in a
real browser are in test_serve_attacks.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
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
    _cookie,
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
    assert page.count('name="_csrf" value=""') >= 2  # the new-job form and sign out: app.js


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
    assert len(library.import_outputs(imported)[0]) == 1
    cookie, _ = _session(client)
    answer = client.get("/media/evil", headers=cookie)
    assert answer.status_code == 404 and TOKEN not in answer.text


def test_a_slide_image_needs_sign_in_and_is_only_one_the_slides_folder_holds(
    client: TestClient, parts: tuple[Settings, Library, Guard], tmp_path: Path
) -> None:
    secret = tmp_path / "config" / "yttl" / "serve-token"
    secret.parent.mkdir(parents=True)
    secret.write_text(TOKEN)
    imported = tmp_path / "imported"
    (imported / "evil.slides").mkdir(parents=True)
    (imported / "evil.slides" / "000001.jpg").write_bytes(b"\xff\xd8 a picture")
    (imported / "evil.slides" / "000002.jpg").symlink_to(secret)  # a slide's name, the token
    slides = [
        {"start": 1.0, "end": 2.0, "image": "evil.slides/000001.jpg", "text": ""},
        {"start": 3.0, "end": 4.0, "image": "evil.slides/000002.jpg", "text": ""},
        {"start": 5.0, "end": 6.0, "image": str(secret), "text": ""},
    ]
    document = {"video": {"id": "evil", "title": "Evil"}, "hours": [], "slides": slides}
    (imported / "evil.json").write_text(json.dumps(document))
    _, library, _ = parts
    assert len(library.import_outputs(imported)[0]) == 1
    refused = client.get("/slides/evil/0")  # no session, no token: the login form
    assert refused.status_code == 401 and b"a picture" not in refused.content
    shown = client.get("/slides/evil/0", headers=BEARER)
    assert shown.status_code == 200 and shown.content == b"\xff\xd8 a picture"
    assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]
    cookie, _ = _session(client)
    for number in (1, 2, 3):
        answer = client.get(f"/slides/evil/{number}", headers=cookie)
        assert answer.status_code == 404 and TOKEN not in answer.text, number


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


# -- found by attacking the fix (attack30) ------------------------------------------------


def test_another_ports_odd_cookie_does_not_sign_the_user_out(client: TestClient) -> None:
    """Any web server on 127.0.0.1 sets cookies that yttl's server receives too (a dev
    server's ``prefs={"theme":"dark"}``, a value with a space): Python's SimpleCookie
    stopped at such a cookie, so the session after it was never seen and the user could
    not sign in again while that cookie lived."""
    cookie, csrf = _session(client)
    session = cookie["Cookie"]
    for other in ('prefs={"theme":"dark"}', "greeting=hello world", 'odd="unterminated', "b=\\"):
        for header in (f"{other}; {session}", f"{session}; {other}"):
            assert client.get("/api/v1/videos", headers={"Cookie": header}).status_code == 200
            made = client.post(
                "/jobs",
                data={"sources": "/nowhere/x.mp4", "_csrf": csrf},
                headers={"Cookie": header, **ORIGIN},
            )
            assert made.status_code == 303, header


def test_wrong_bearer_tokens_do_not_lock_the_user_out_of_the_login_link(
    client: TestClient,
) -> None:
    """An extension or script still holding the token from before ``--new-token`` keeps
    sending it: that is counted against bearer tokens, not against the user's own login."""
    for n in range(8):
        wrong = {"Authorization": f"Bearer old-token-{n}"}
        assert client.get("/api/v1/videos", headers=wrong).status_code in (401, 429)
    assert client.get(f"/?token={TOKEN}", headers=NAVIGATION).status_code == 303
    client.cookies.clear()
    assert client.post("/login", data={"token": TOKEN}, headers=ORIGIN).status_code == 303


def test_an_unexpected_error_is_a_500_with_the_csp_and_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: Request) -> Response:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    guarded = Middleware(SecurityMiddleware, guard=Guard(TOKEN), login_page=login_page)
    app = Starlette(routes=[Route("/boom", broken)], middleware=[guarded])  # as build_app
    with TestClient(app, base_url=BASE) as client:  # it would raise what the app did not catch
        answer = client.get("/boom", headers=BEARER)
    assert answer.status_code == 500
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "yttl.serve"]
    assert "OverflowError" in logged and "\n" not in logged  # one line for the log
    assert "Traceback" not in answer.text


def test_odd_queries_are_answered_not_crashed_on(client: TestClient) -> None:
    cookie = _cookie(client)
    assert client.get("/?page=99999999999999999999999", headers=cookie).status_code == 200
    bad = client.get("/api/v1/lookup", params={"url": "http://[::1"}, headers=BEARER)
    assert bad.status_code == 400 and "YouTube" in bad.json()["error"]


def test_a_new_token_is_not_made_when_the_server_cannot_start(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """``yttl serve --new-token`` on a port in use: the running server keeps its token, so
    rotating the file would leave the user believing the old token is dead."""
    from tests.conftest import run_yttl

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        first = run_yttl(["serve", "--print-token"], clean_env)
        assert first.returncode == 0
        rotated = run_yttl(["serve", "--port", str(port), "--new-token"], clean_env, timeout=60)
    assert rotated.returncode == 2 and "cannot listen" in rotated.stderr
    assert "Traceback" not in rotated.stderr
    again = run_yttl(["serve", "--print-token"], clean_env)
    assert again.stdout.strip() == first.stdout.strip()


def test_the_challenge_reads_a_short_body_only(client: TestClient) -> None:
    """Anyone may post to the challenge, a page of any site too (text/plain needs no
    preflight): 300 MB there were read whole into memory (675 MB resident)."""
    huge = client.post(
        "/api/v1/challenge", content=b"a" * (2 << 20), headers={"Content-Type": "text/plain"}
    )
    assert huge.status_code == 413
    deep = b'{"nonce": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # past Python's recursion limit
    assert client.post("/api/v1/challenge", content=deep).status_code == 400
    jobs = client.post(
        "/api/v1/jobs", content=deep, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert jobs.status_code == 400 and "JSON" in jobs.json()["error"]


def test_a_forwarded_for_header_does_not_reset_the_limit(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """uvicorn believed X-Forwarded-For from 127.0.0.1 by default: a new made-up address
    a guess gave each guess a new limit (no proxy stands in front of yttl serve)."""
    import urllib.error
    import urllib.request

    from tests.support.browser import running_server

    with running_server([], clean_env) as (base, _, _):
        answers = []
        for n in range(7):
            request = urllib.request.Request(
                f"{base}/api/v1/videos",
                headers={"Authorization": f"Bearer guess{n}", "X-Forwarded-For": f"10.0.0.{n}"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            answers.append(refused.value.code)
    assert answers == [401] * 5 + [429] * 2


def test_a_token_rotated_while_the_server_runs_ends_the_old_one_and_its_sessions(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """``yttl serve --print-token --new-token`` while a server runs (the token leaked):
    the file changed, the server went on taking the old token and its sessions."""
    import urllib.error
    import urllib.request

    from tests.conftest import run_yttl
    from tests.support.browser import running_server

    def status(base: str, headers: dict[str, str]) -> int:
        request = urllib.request.Request(f"{base}/api/v1/videos", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return refused.code

    with running_server([], clean_env) as (base, old, _):
        login = urllib.request.Request(f"{base}/?token={old}", headers=NAVIGATION)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        opener.open(login, timeout=30)
        (jar,) = [h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)]
        (session,) = [f"{c.name}={c.value}" for c in jar.cookiejar]
        assert status(base, {"Cookie": session}) == 200
        rotated = run_yttl(["serve", "--print-token", "--new-token"], clean_env)
        new = rotated.stdout.strip()
        assert rotated.returncode == 0 and len(new) >= 32 and new != old
        assert status(base, {"Cookie": session}) == 401
        assert status(base, {"Authorization": f"Bearer {old}"}) == 401
        assert status(base, {"Authorization": f"Bearer {new}"}) == 200


def test_a_replayed_cookie_finds_no_csrf_token_in_the_pages(
    client: TestClient, parts: tuple[Settings, Library, Guard]
) -> None:
    """Another port's server receives the session cookie and replays it with a plain
    client: it read the CSRF token from any page (a meta tag, the forms) and started jobs
    with a made-up Origin. The token now reaches the browser once, in the fragment of the
    login's redirect (never sent to a server), and the pages never show it."""
    login = client.get(f"/jobs?token={TOKEN}", headers=NAVIGATION)
    location = login.headers["location"]
    assert location.startswith("/jobs#yttl-csrf=")
    csrf = location.split("#yttl-csrf=", 1)[1]
    client.cookies.clear()
    cookie = {"Cookie": f"{COOKIE}={login.cookies[COOKIE]}"}
    form = client.post("/login", data={"token": TOKEN, "next": "/jobs"}, headers=ORIGIN)
    assert form.headers["location"].startswith("/jobs#yttl-csrf=")
    client.cookies.clear()
    for path in ("/", "/jobs", "/search?q=x", "/v/missing"):
        page = client.get(path, headers=cookie)
        assert page.status_code in (200, 404) and csrf not in page.text, path
        assert csrf not in str(page.headers)
    assert _job(client, {**cookie, **ORIGIN}) == 403  # what the replayer can send
    assert _job(client, {**cookie, **ORIGIN}, _csrf=csrf) == 303  # what the browser sends


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
