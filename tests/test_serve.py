"""``yttl serve``: every rule of DESIGN §3 "yttl serve" with a test that fails without
it, and the API end to end, against the loopback provider (Starlette's TestClient)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from starlette.testclient import TestClient

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.config import Settings, load_settings
from yttl.library import Library
from yttl.library.jobs import JobRecord, JobStore
from yttl.serve import build_app
from yttl.serve.security import Guard
from yttl.serve.state import youtube_id
from yttl.serve.tokens import load_token

TOKEN = "t" * 43
BASE = "http://127.0.0.1:8765"
VIDEO = "abcdefghijk"  # 11 characters, as a YouTube id


def _settings(server: LoopbackServer, tmp_path: Path, **more: Any) -> Settings:
    flags = {
        "llm_provider": "openai",
        "openai_base_url": server.openai_base_url,
        "output_dir": str(tmp_path / "out"),
        "format": ("json", "html"),
        "open": False,
        "quiet": True,
        **more,
    }
    settings, _ = load_settings(flags, environ={"OPENAI_API_KEY": "sk-loopback-0123456789"})
    return settings


@pytest.fixture
def app_parts(server: LoopbackServer, tmp_path: Path) -> tuple[Settings, Library, Guard]:
    settings = _settings(server, tmp_path)
    library = Library(tmp_path / "library.sqlite")
    return settings, library, Guard(TOKEN, allowed_origins=("https://allowed.example",))


@pytest.fixture
def client(app_parts: tuple[Settings, Library, Guard]) -> Iterator[TestClient]:
    with TestClient(build_app(*app_parts), base_url=BASE, follow_redirects=False) as c:
        yield c


BEARER = {"Authorization": f"Bearer {TOKEN}"}
COOKIE = "yttl_session_8765"  # named with the server's port
ORIGIN = {"Origin": BASE}
NAVIGATION = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}  # the user opens it


def _session(client: TestClient) -> tuple[dict[str, str], str]:
    """Sign in as a browser does: (the Cookie header of the session, its CSRF token)."""
    answer = client.get(f"/jobs?token={TOKEN}", headers=NAVIGATION)
    assert answer.status_code == 303, answer.text
    client.cookies.clear()  # each request below says what it sends
    cookie = {"Cookie": f"{COOKIE}={answer.cookies[COOKIE]}"}
    csrf = answer.headers["location"].split("#yttl-csrf=", 1)[1]  # kept by app.js
    return cookie, csrf


def _cookie(client: TestClient) -> dict[str, str]:
    return _session(client)[0]


# -- the rules --------------------------------------------------------------------------


def test_every_request_needs_the_token_or_the_session(client: TestClient) -> None:
    assert client.get("/api/v1/videos").status_code == 401
    assert (
        client.get("/api/v1/videos", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    assert client.get("/api/v1/videos", headers=BEARER).status_code == 200
    cookie = _cookie(client)
    assert client.get("/api/v1/videos", headers=cookie).status_code == 200
    page = client.get("/")
    assert page.status_code == 401 and 'name="token"' in page.text  # the login form
    assert client.get("/", headers=cookie).status_code == 200
    assert client.get("/static/app.css").status_code == 200  # no secret in a stylesheet


def test_the_login_url_trades_the_token_for_a_strict_httponly_cookie(client: TestClient) -> None:
    answer = client.get(f"/search?q=memory&token={TOKEN}", headers=NAVIGATION)
    assert answer.status_code == 303
    location = answer.headers["location"]  # the token leaves the address bar
    assert location.split("#yttl-csrf=")[0] == "/search?q=memory" and TOKEN not in location
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "max-age" not in cookie.lower() and "expires" not in cookie.lower()  # idle expiry
    again = client.get(f"/?token={TOKEN}", headers=NAVIGATION)
    assert again.cookies[COOKIE] != answer.cookies[COOKIE]  # random, not made from the token
    client.cookies.clear()
    wrong = client.get("/?token=nope")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    form = client.post("/login", data={"token": TOKEN, "next": "/jobs"}, headers=ORIGIN)
    assert form.status_code == 303 and form.headers["location"].startswith("/jobs#yttl-csrf=")
    assert "HttpOnly" in form.headers["set-cookie"]
    client.cookies.clear()
    sideways = client.post(
        "/login", data={"token": TOKEN, "next": "/\\evil.example"}, headers=ORIGIN
    )
    assert sideways.headers["location"].split("#")[0] == "/evil.example"  # a local path only


def test_failed_logins_are_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        assert client.get("/?token=guess").status_code == 401
    assert client.get("/?token=guess").status_code == 429
    assert client.get(f"/?token={TOKEN}").status_code == 429  # even the right one, for now
    for _ in range(2):
        client.post("/login", data={"token": "guess"}, headers=ORIGIN)
    assert client.post("/login", data={"token": TOKEN}, headers=ORIGIN).status_code == 429


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("evil.example", 403),
        ("evil.example:8765", 403),
        ("127.0.0.1.evil.example", 403),
        ("localhost:8765@evil.example", 403),
        ("localhost:8765.evil.example", 403),
        ("127.0.0.1:", 403),
        ("localhost:87a", 403),
        ("[::1]x", 403),
        ("127.0.0.1:8765", 200),
        ("localhost:8765", 200),
        ("[::1]:8765", 200),
        ("LOCALHOST", 200),
    ],
)
def test_the_host_must_be_a_loopback_name(client: TestClient, host: str, code: int) -> None:
    """A site whose name is rebound to 127.0.0.1 sends its own name as the Host."""
    assert client.get("/api/v1/videos", headers={**BEARER, "Host": host}).status_code == code


def test_a_host_given_with_allow_host_is_let_in(app_parts: tuple[Settings, Library, Guard]) -> None:
    settings, library, _ = app_parts
    guard = Guard(TOKEN, allowed_hosts=("yttl.home.arpa",))
    with TestClient(build_app(settings, library, guard), base_url="http://yttl.home.arpa") as c:
        assert c.get("/api/v1/videos", headers=BEARER).status_code == 200


def _submit(client: TestClient, headers: dict[str, str], body: Any = None) -> int:
    body = body if body is not None else {"sources": ["/nowhere/talk.mp4"]}
    return client.post("/api/v1/jobs", json=body, headers=headers).status_code


def test_unsafe_requests_from_another_site_are_refused(client: TestClient) -> None:
    cookie, csrf = _session(client)
    token = {"X-YTTL-CSRF": csrf}
    assert _submit(client, {**cookie, **token, "Origin": "http://evil.example"}) == 403
    assert _submit(client, {**BEARER, "Origin": "https://evil.example"}) == 403
    assert _submit(client, {**BEARER, "Origin": "http://127.0.0.1:9999"}) == 403  # another port
    assert (
        client.post(
            "/jobs/x/cancel", headers={**cookie, "Origin": "http://evil.example"}
        ).status_code
        == 403
    )
    assert _submit(client, {**cookie, **token, **ORIGIN, "Sec-Fetch-Site": "same-origin"}) == 202
    # what a page on another port gets through a 307 to here: no Origin, or "null"
    assert _submit(client, {**cookie, **token}) == 403
    assert _submit(client, {**cookie, **token, "Origin": "null"}) == 403
    assert _submit(client, {**cookie, **ORIGIN}) == 403  # no CSRF token
    assert _submit(client, {**cookie, **ORIGIN, "X-YTTL-CSRF": "x" * 43}) == 403
    # the paired extension: its own origin, with its bearer token
    assert _submit(client, {**BEARER, "Origin": "chrome-extension://abcdefghijklmnop"}) == 202
    assert _submit(client, {**BEARER, "Origin": "moz-extension://1234-5678"}) == 202
    assert _submit(client, {**cookie, "Origin": "chrome-extension://abcdefghijklmnop"}) == 403
    assert _submit(client, {**BEARER, "Sec-Fetch-Site": "cross-site"}) == 202


def test_the_api_takes_json_bodies_only(client: TestClient) -> None:
    form = client.post("/api/v1/jobs", data={"sources": "x"}, headers=BEARER)
    assert form.status_code == 415
    text = client.post(
        "/api/v1/ask",
        content=b'{"question": "x"}',
        headers={**BEARER, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    assert (
        client.post(
            "/api/v1/jobs",
            content=b"{not json",
            headers={**BEARER, "Content-Type": "application/json"},
        ).status_code
        == 400
    )


def test_cors_names_allowed_origins_only_never_a_wildcard(client: TestClient) -> None:
    ok = client.get("/api/v1/videos", headers={**BEARER, "Origin": "https://allowed.example"})
    assert ok.headers["access-control-allow-origin"] == "https://allowed.example"
    other = client.get("/api/v1/videos", headers={**BEARER, "Origin": "https://other.example"})
    assert "access-control-allow-origin" not in other.headers
    pre = client.options(
        "/api/v1/jobs",
        headers={"Origin": "https://allowed.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] != "*"
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    refused = client.options(
        "/api/v1/jobs",
        headers={"Origin": "https://other.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_the_token_file_is_private_made_once_and_rotated_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "yttl" / "serve-token"
    first = load_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert load_token(path) == first
    path.chmod(0o644)
    assert load_token(path) == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_token(path, rotate=True)
    assert second != first and load_token(path) == second


def test_the_command_prints_one_login_line_and_keeps_its_token(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    token = run_yttl(["serve", "--print-token"], clean_env)
    assert token.returncode == 0 and len(token.stdout.strip()) >= 32
    path = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "serve-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yttl",
            "serve",
            "--port",
            "0",
            "-lp",
            "openai",
            "-ou",
            "http://127.0.0.1:9/v1",
        ],
        env={**clean_env, "OPENAI_API_KEY": "sk-x"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert f"/?token={token.stdout.strip()}" in line and line.count("http://") == 1
    remote = run_yttl(["serve", "--host", "0.0.0.0", "--port", "0"], clean_env)
    assert remote.returncode == 2 and "--allow-remote" in remote.stderr


# -- the API end to end ---------------------------------------------------------------


def _wait(client: TestClient, job_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=BEARER).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_a_job_runs_and_the_library_search_ask_and_lookup_see_it(
    client: TestClient, server: LoopbackServer, tmp_path: Path
) -> None:
    info = synthetic_video(server, tmp_path, VIDEO, seconds=900, title="Sleep and memory")
    made = client.post(
        "/api/v1/jobs",
        json={"sources": [str(info)], "options": {"summary_language": "German"}},
        headers=BEARER,
    )
    assert made.status_code == 202 and made.json()["status"] == "queued"
    job = _wait(client, made.json()["id"])
    assert job["status"] == "ok", job
    (video,) = job["videos"]
    assert video["video_id"] == VIDEO and video["page"] == f"/v/{VIDEO}"
    assert video["sections_done"] == video["sections_total"] == 3
    assert "German" in server.state.calls[0].system  # the client's option reached the prompt
    assert (tmp_path / "out" / f"{VIDEO}.json").is_file()  # the server's output folder
    assert [v["id"] for v in client.get("/api/v1/videos", headers=BEARER).json()] == [VIDEO]
    document = client.get(f"/api/v1/videos/{VIDEO}", headers=BEARER).json()
    assert document["video"]["title"] == "Sleep and memory"
    hits = client.get("/api/v1/search", params={"q": "attention"}, headers=BEARER).json()
    assert hits and hits[0]["video_id"] == VIDEO and "t=" in hits[0]["url"]
    server.state.reply = lambda messages: "It is discussed there [5:10]."
    answer = client.post(
        "/api/v1/ask", json={"question": "what about attention?", "video_id": VIDEO}, headers=BEARER
    ).json()
    assert answer["found"] and answer["citations"][0]["start"] == 310.0
    assert answer["sources"] and {"video_id", "start", "end", "url", "score"} <= set(
        answer["sources"][0]
    )
    everywhere = client.post(
        "/api/v1/ask", json={"question": "what about attention?"}, headers=BEARER
    ).json()
    assert everywhere["found"] and everywhere["citations"][0]["video_id"] == VIDEO
    look = client.get(
        "/api/v1/lookup", params={"url": f"https://youtu.be/{VIDEO}?t=3"}, headers=BEARER
    ).json()
    assert look == {"video_id": VIDEO, "in_library": True, "page": f"/v/{VIDEO}"}
    other = client.get(
        "/api/v1/lookup",
        params={"url": "https://www.youtube.com/watch?v=zzzzzzzzzzz"},
        headers=BEARER,
    ).json()
    assert other["in_library"] is False and other["page"] is None
    events = client.get(f"/api/v1/jobs/{job['id']}/events", headers=BEARER)
    kinds = [
        line.split(":", 1)[1].strip()
        for line in events.text.splitlines()
        if line.startswith("event:")
    ]
    assert (
        kinds[-1] == "done"
        and json.loads(
            [line for line in events.text.splitlines() if line.startswith("data:")][-1][5:]
        )["status"]
        == "ok"
    )
    page = client.get(f"/v/{VIDEO}", headers=_cookie(client))
    assert page.status_code == 200 and "youtube-nocookie.com/embed/abcdefghijk" in page.text
    assert 'data-t="300"' in page.text


def test_a_job_may_set_only_what_a_web_client_may(client: TestClient) -> None:
    for options in (
        {"output_dir": "/etc"},
        {"openai_base_url": "http://evil.example/v1"},
        {"sections": "hourly"},
        {"profile": "nope"},
    ):
        answer = client.post(
            "/api/v1/jobs", json={"sources": ["x"], "options": options}, headers=BEARER
        )
        assert answer.status_code == 400, options
    assert client.post("/api/v1/jobs", json={"sources": []}, headers=BEARER).status_code == 400
    assert (
        client.get("/api/v1/search", params={"q": "x", "limit": "0"}, headers=BEARER).status_code
        == 400
    )
    assert client.get("/api/v1/videos/nope", headers=BEARER).status_code == 404


def test_jobs_share_one_budget_and_cancel(
    client: TestClient, server: LoopbackServer, tmp_path: Path
) -> None:
    server.state.latency = 0.3
    infos = [synthetic_video(server, tmp_path, f"v{i}", seconds=1800) for i in range(3)]
    ids = [
        client.post("/api/v1/jobs", json={"sources": [str(p)]}, headers=BEARER).json()["id"]
        for p in infos
    ]
    for job_id in ids[:2]:
        assert _wait(client, job_id)["status"] == "ok"
    # three jobs at once, one provider budget: never more in flight than the server allows
    assert server.state.max_in_flight <= 16
    slow = synthetic_video(server, tmp_path, "slow", seconds=3600)
    server.state.latency = 30
    job_id = client.post("/api/v1/jobs", json={"sources": [str(slow)]}, headers=BEARER).json()["id"]
    time.sleep(1.0)
    cancelled = client.delete(f"/api/v1/jobs/{job_id}", headers=BEARER).json()
    assert cancelled["status"] == "cancelled"
    server.state.latency = 0.0
    retried = client.post(f"/api/v1/jobs/{job_id}/retry", headers=BEARER)
    assert retried.status_code == 202
    assert _wait(client, job_id)["status"] == "ok"


def test_unfinished_jobs_resume_when_the_server_starts_again(
    app_parts: tuple[Settings, Library, Guard], server: LoopbackServer, tmp_path: Path
) -> None:
    settings, library, guard = app_parts
    info = synthetic_video(server, tmp_path, "resumed", seconds=600)
    store = JobStore(library)
    left = JobRecord([str(info)], status="running")  # the server stopped while it ran
    done = JobRecord([str(info)], status="ok")
    store.save(left)
    store.save(done)
    with TestClient(build_app(settings, library, guard), base_url=BASE) as client:
        assert _wait(client, left.id)["status"] == "ok"
        listed = {j["id"]: j["status"] for j in client.get("/api/v1/jobs", headers=BEARER).json()}
        assert listed == {left.id: "ok", done.id: "ok"}
    assert len(server.state.calls) == 2 + 1  # the resumed one ran; the finished one did not


@pytest.mark.parametrize(
    ("url", "video"),
    [
        ("https://www.youtube.com/watch?v=vo4pMVb0R6M&t=42", "vo4pMVb0R6M"),
        ("https://youtu.be/vo4pMVb0R6M", "vo4pMVb0R6M"),
        ("https://m.youtube.com/shorts/vo4pMVb0R6M", "vo4pMVb0R6M"),
        ("https://example.com/watch?v=vo4pMVb0R6M", None),
        ("https://www.youtube.com/watch?v=short", None),
    ],
)
def test_lookup_reads_youtube_urls(url: str, video: str | None) -> None:
    assert youtube_id(url) == video


def test_a_local_video_is_served_with_range_requests(
    client: TestClient, app_parts: tuple[Settings, Library, Guard], tmp_path: Path
) -> None:
    media = tmp_path / "talk.flac"
    media.write_bytes(os.urandom(4096))
    _, library, _ = app_parts
    library.record_document(
        {
            "video": {"id": "talk-1", "title": "Talk", "source": "file", "url": media.as_uri()},
            "hours": [],
        }
    )
    cookie = _cookie(client)
    # what an imported JSON says is not enough: only what the pipeline itself read plays
    assert client.get("/media/talk-1", headers=cookie).status_code == 404
    library.record_document(
        {
            "video": {"id": "talk-1", "title": "Talk", "source": "file", "url": media.as_uri()},
            "hours": [],
        },
        media=media,
    )
    part = client.get("/media/talk-1", headers={**cookie, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == media.read_bytes()[100:200]
    assert client.get("/media/nope", headers=cookie).status_code == 404
    assert client.get("/media/talk-1").status_code == 401
