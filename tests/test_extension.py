"""The browser extension in Chromium (Playwright, Debian's ``chromium``), loaded unpacked;
YouTube's watch page is a local fixture the browser is routed to, ``yttl serve`` runs on
loopback against the fake provider. Nothing reaches YouTube."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import need_browser, running_server
from tests.support.server import LoopbackServer
from tests.support.shadow import Panel
from tests.support.synthetic import synthetic_video
from tests.test_serve_browser import _silent_media
from yttl.extension import CHROME_EXTENSION_ID, FIREFOX_EXTENSION_ID, HOST_NAME
from yttl.library import Library

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "extension"
FIXTURES = Path(__file__).parent / "fixtures"
KNOWN = "abcdefghijk"  # in the library
NEW = "zzzzzzzzzzz"  # not yet


def test_the_manifest_is_one_source_for_chrome_and_firefox() -> None:
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    assert manifest["background"]["service_worker"] == "background.js"  # Chrome
    assert manifest["background"]["scripts"] == ["background.js"]  # Firefox
    assert manifest["browser_specific_settings"]["gecko"]["id"] == FIREFOX_EXTENSION_ID
    hosts = manifest["host_permissions"]
    assert all(
        h.startswith(
            (
                "https://www.youtube.com/",
                "https://m.youtube.com/",
                "http://127.0.0.1/",
                "http://localhost/",
            )
        )
        for h in hosts
    )
    scripts = " ".join(p.read_text() for p in EXTENSION.glob("*.js"))
    for remote in ("eval(", "new Function", '<script src="http', 'importScripts("http'):
        assert remote not in scripts  # no remote code
    import base64
    import hashlib

    digest = hashlib.sha256(base64.b64decode(manifest["key"])).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(c, 16)) for c in digest) == CHROME_EXTENSION_ID


def _route_youtube(context: Any, media: bytes) -> None:
    page = (FIXTURES / "youtube_watch.html").read_bytes()
    odd = (FIXTURES / "youtube_no_title.html").read_bytes()

    def handle(route: Any) -> None:
        url = route.request.url
        if "/fixture/media.flac" in url:  # with range requests, or the player cannot seek
            wanted = route.request.headers.get("range", "")
            start, _, end = wanted.removeprefix("bytes=").partition("-")
            if not wanted:
                route.fulfill(
                    status=200,
                    body=media,
                    headers={"Content-Type": "audio/flac", "Accept-Ranges": "bytes"},
                )
                return
            first, last = int(start or 0), int(end) if end else len(media) - 1
            route.fulfill(
                status=206,
                body=media[first : last + 1],
                headers={
                    "Content-Type": "audio/flac",
                    "Accept-Ranges": "bytes",
                    "Content-Range": f"bytes {first}-{last}/{len(media)}",
                },
            )
        elif "layout=new" in url:
            route.fulfill(status=200, body=odd, content_type="text/html")
        elif "/watch" in url:
            route.fulfill(status=200, body=page, content_type="text/html")
        else:
            route.fulfill(status=404, body=b"")

    context.route("https://www.youtube.com/**", handle)


@contextmanager
def _browser(profile: Path, env: dict[str, str] | None = None) -> Iterator[tuple[Any, str]]:
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            headless=False,
            env=env,
            args=[
                "--headless=new",
                "--no-sandbox",
                f"--disable-extensions-except={EXTENSION}",
                f"--load-extension={EXTENSION}",
            ],
        )
        try:
            worker = (
                context.service_workers[0]
                if context.service_workers
                else context.wait_for_event("serviceworker", timeout=30_000)
            )
            yield context, worker.url.split("/")[2]
        finally:
            context.close()


def _media(tmp_path: Path) -> bytes:
    media = tmp_path / "fixture.flac"
    _silent_media(media, 600)
    return media.read_bytes()


def _summarized(server: LoopbackServer, tmp_path: Path, base: str, token: str) -> None:
    import urllib.request

    info = synthetic_video(server, tmp_path, KNOWN, seconds=900, title="Fixture video")
    request = urllib.request.Request(
        f"{base}/api/v1/jobs",
        method="POST",
        data=json.dumps({"sources": [str(info)]}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    job = json.load(urllib.request.urlopen(request))["id"]
    for _ in range(300):
        check = urllib.request.Request(
            f"{base}/api/v1/jobs/{job}", headers={"Authorization": f"Bearer {token}"}
        )
        if json.load(urllib.request.urlopen(check))["status"] == "ok":
            return
        time.sleep(0.1)
    raise AssertionError("the fixture video was not summarized")


def test_pair_open_the_summary_seek_follow_navigation_and_start_a_job(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(tmp_path / "out")]
    with (
        running_server(args, env) as (base, token, _),
        _browser(tmp_path / "profile") as (context, extension_id),
    ):
        assert extension_id == CHROME_EXTENSION_ID  # pinned by the manifest's key
        _summarized(server, tmp_path, base, token)
        options = context.new_page()
        options.goto(f"chrome-extension://{extension_id}/options.html")
        options.fill("[data-yttl=server]", base)
        options.fill("[data-yttl=token]", "not-the-token")
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status]:not(:empty)")  # no eval: the page's CSP
        assert "refused the token" in options.inner_text("[data-yttl=status]")
        options.fill("[data-yttl=token]", token)
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status].good")

        _route_youtube(context, _media(tmp_path))
        page = context.new_page()
        page.goto(f"https://www.youtube.com/watch?v={KNOWN}")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=ready]", timeout=15_000)
        assert (
            page.evaluate(
                "document.querySelector('[data-yttl=summarize]').previousElementSibling.tagName"
            )
            == "H1"
        )  # beside the title
        page.click("[data-yttl=summarize]")
        panel = Panel(page)
        panel.wait("a[data-yttl-t='300']")
        assert page.evaluate("!!document.querySelector('#secondary [data-yttl=panel]')")
        page.wait_for_function("document.querySelector('video').readyState >= 1")
        panel.click("a[data-yttl-t='300']")
        page.wait_for_function("Math.abs(document.querySelector('video').currentTime - 300) < 2")

        server.state.reply = lambda messages: "Attention comes up here [7:30]."
        panel.fill("[data-yttl=chat-input]", "what about attention?")
        panel.click("[data-yttl=chat-send]")
        panel.wait("[data-yttl=chat-answer] a[data-yttl-t='450']")
        assert server.state.calls[-1].stream  # streamed, by the background worker's port
        panel.click("[data-yttl=chat-answer] a[data-yttl-t='450']")
        page.wait_for_function("Math.abs(document.querySelector('video').currentTime - 450) < 2")

        page.click("#next")  # the single-page app moves on to a video not in the library
        page.wait_for_function(f"location.search === '?v={NEW}'")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=idle]")
        assert page.locator("[data-yttl=panel]").count() == 0  # the old summary is gone
        page.click("[data-yttl=summarize]")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=running]")
        # offline here, yt-dlp cannot read YouTube: the job fails, said in one line
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=error]", timeout=60_000)
        error = Panel(page).text(".yttl-error")
        assert error and "\n" not in error.strip() and "Traceback" not in error

        page.goto(f"https://www.youtube.com/watch?v={KNOWN}&layout=new")  # no known title
        page.wait_for_selector("[data-yttl=summarize].yttl-floating", timeout=5_000)
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=ready]")

        # the tab closed while an answer streams: the background worker stops reading it,
        # so the server stops the call and keeps no half answer (as a page's fetch would)
        from tests.support.server import StreamGate

        gate = StreamGate(free=1)
        server.state.stream_pace = gate
        asking = context.new_page()
        asking.goto(f"https://www.youtube.com/watch?v={KNOWN}")
        asking.wait_for_selector("[data-yttl=summarize][data-yttl-state=ready]")
        asking.click("[data-yttl=summarize]")
        panel = Panel(asking)
        panel.wait("[data-yttl=chat-input]")
        panel.fill("[data-yttl=chat-input]", "and what came next?")
        panel.click("[data-yttl=chat-send]")
        try:
            for _ in range(1200):  # the first word is out, the second waits: mid-answer
                if gate.asked >= 2:
                    break
                time.sleep(0.05)
            assert gate.asked >= 2
            asking.close()
            library = Library(Path(env["XDG_DATA_HOME"]) / "yttl" / "library.sqlite")
            from yttl.library.chats import ChatStore

            def last_question() -> Any:
                (thread,) = ChatStore(library).threads(KNOWN)[:1]
                kept = ChatStore(library).get(thread.id)
                return kept.messages[-1] if kept else None

            for _ in range(400):  # said by the server once the worker lets go
                if (last_question().error or "").startswith("stopped"):
                    break
                time.sleep(0.05)
            assert last_question().role == "user" and last_question().error
        finally:
            gate.open()
            server.state.stream_pace = None


def test_an_unpaired_extension_says_what_to_do_and_a_stopped_server_too(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    with _browser(tmp_path / "profile") as (context, extension_id):
        _route_youtube(context, _media(tmp_path))
        page = context.new_page()
        page.goto(f"https://www.youtube.com/watch?v={KNOWN}")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=error]")
        assert "yttl extension install" in (
            page.get_attribute("[data-yttl=summarize]", "title") or ""
        )
        options = context.new_page()
        options.goto(f"chrome-extension://{extension_id}/options.html")
        options.fill("[data-yttl=server]", "http://127.0.0.1:9")
        options.fill("[data-yttl=token]", "x" * 43)
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status]:not(:empty)")  # no eval: the page's CSP
        assert "not running" in options.inner_text("[data-yttl=status]")


def test_the_native_host_starts_yttl_serve_and_pairs_the_extension(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    profile = tmp_path / "profile"
    env = {**clean_env, "HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yttl",
            "extension",
            "install",
            "--browser",
            "chromium",
            "--manifest-dir",
            str(profile / "NativeMessagingHosts"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((profile / "NativeMessagingHosts" / f"{HOST_NAME}.json").read_text())
    assert manifest["name"] == HOST_NAME
    assert manifest["allowed_origins"] == [f"chrome-extension://{CHROME_EXTENSION_ID}/"]
    library = Path(env["XDG_DATA_HOME"]) / "yttl" / "library.sqlite"
    Library(library).record_document(
        {
            "video": {
                "id": KNOWN,
                "title": "Fixture video",
                "source": "url",
                "url": f"https://www.youtube.com/watch?v={KNOWN}",
                "extractor": "youtube",
            },
            "hours": [
                {
                    "index": 0,
                    "start": 0.0,
                    "end": 600.0,
                    "summary": "",
                    "sections": [
                        {
                            "index": 0,
                            "start": 0.0,
                            "end": 300.0,
                            "summary": "Memory.",
                            "status": "ok",
                            "url": f"https://www.youtube.com/watch?v={KNOWN}&t=0s",
                        },
                        {
                            "index": 1,
                            "start": 300.0,
                            "end": 600.0,
                            "summary": "Sleep.",
                            "status": "ok",
                            "url": f"https://www.youtube.com/watch?v={KNOWN}&t=300s",
                        },
                    ],
                }
            ],
        }
    )
    state = Path(env["XDG_STATE_HOME"]) / "yttl" / "serve.json"
    try:
        with _browser(profile, env=env) as (context, _):
            _route_youtube(context, _media(tmp_path))
            page = context.new_page()
            page.goto(f"https://www.youtube.com/watch?v={KNOWN}")
            page.wait_for_selector("[data-yttl=summarize][data-yttl-state=ready]", timeout=60_000)
            page.click("[data-yttl=summarize]")
            Panel(page).wait("a[data-yttl-t='300']")
        assert state.is_file()  # the host started yttl serve, which says where it is
        doctor = subprocess.run(
            [
                sys.executable,
                "-m",
                "yttl",
                "extension",
                "doctor",
                "--manifest-dir",
                str(profile / "NativeMessagingHosts"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert doctor.returncode == 0 and "ok      yttl serve is running" in doctor.stdout
    finally:
        if state.is_file():
            os.kill(json.loads(state.read_text())["pid"], signal.SIGTERM)


HOSTILE = """async () => {
    // YouTube's own scripts, turned against the extension
    const button = document.querySelector("[data-yttl=summarize]");
    history.pushState({}, "", "/watch?v=%s&list=PLhostile0123456789");
    button.click();
    button.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const panel = document.querySelector("[data-yttl=panel]");
    return {state: button.dataset.yttlState, panel: !!panel,
            inside: panel ? (panel.shadowRoot === null) : null,
            text: panel ? panel.textContent : ""};
}"""


def _in_content_script(context: Any, page: Any, kind: str) -> str:
    """What the background answers the content script's message ``{"type": kind}``,
    asked from the content script's isolated world (through the DevTools protocol)."""
    cdp = context.new_cdp_session(page)
    worlds: list[dict[str, Any]] = []
    cdp.on("Runtime.executionContextCreated", lambda event: worlds.append(event["context"]))
    cdp.send("Runtime.enable")
    (world,) = [
        w
        for w in worlds
        if w.get("auxData", {}).get("type") == "isolated"
        and w.get("origin", "").startswith("chrome-extension://")
    ]
    asking = (
        f"new Promise((resolve) => chrome.runtime.sendMessage({{type: {json.dumps(kind)}, server: "
        "'http://127.0.0.1:9', token: 'x'}, (answer) => resolve(JSON.stringify(answer "
        "=== undefined ? null : answer))))"
    )
    found = cdp.send(
        "Runtime.evaluate",
        {
            "expression": asking,
            "contextId": world["id"],
            "awaitPromise": True,
            "returnByValue": True,
        },
    )
    return str(found["result"].get("value"))


def test_the_pages_scripts_cannot_drive_the_extension(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """pushState to a playlist URL and a scripted click start nothing; the panel's summary
    and ask box are out of the page's reach; a user's click sends one canonical URL."""
    import urllib.request

    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(tmp_path / "out")]
    with (
        running_server(args, env) as (base, token, _),
        _browser(tmp_path / "profile") as (context, extension_id),
    ):
        _summarized(server, tmp_path, base, token)

        def jobs() -> list[dict[str, Any]]:
            request = urllib.request.Request(
                f"{base}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}
            )
            found: list[dict[str, Any]] = json.load(urllib.request.urlopen(request))
            return found

        options = context.new_page()
        options.goto(f"chrome-extension://{extension_id}/options.html")
        options.fill("[data-yttl=server]", base)
        options.fill("[data-yttl=token]", token)
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status].good")
        _route_youtube(context, _media(tmp_path))
        page = context.new_page()
        page.goto(f"https://www.youtube.com/watch?v={NEW}")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=idle]")
        known = {j["id"] for j in jobs()}
        before = len(known)
        seen = page.evaluate(HOSTILE % NEW)
        assert seen["state"] == "idle" and not seen["panel"], seen  # nothing started
        page.goto(f"https://www.youtube.com/watch?v={KNOWN}")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=ready]")
        page.click("[data-yttl=summarize]")  # the user opens the panel
        Panel(page).wait("a[data-yttl-t='300']")
        seen = page.evaluate(HOSTILE % KNOWN)
        assert seen["inside"] is True and "Fixture" not in seen["text"]  # closed to the page
        assert "Summary " not in page.evaluate("document.body.innerText")
        assert len(jobs()) == before
        for ask in ("pairing", "findServer", "save"):  # from the content script's own world
            assert token not in _in_content_script(context, page, ask)
        page.goto(f"https://www.youtube.com/watch?v={NEW}&list=PLhostile0123456789&index=3")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=idle]")
        page.click("[data-yttl=summarize]")  # a user's click: one video, its canonical URL
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=running]")
        for _ in range(300):  # "running" shows at the click; the job follows its challenge
            made = [j for j in jobs() if j["id"] not in known]
            if made:
                break
            time.sleep(0.1)
        assert [j["sources"] for j in made] == [[f"https://www.youtube.com/watch?v={NEW}"]]


def _web_ext() -> str | None:
    import shutil

    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "web-ext"
    return str(local) if local.is_file() else shutil.which("web-ext")


def test_firefox_validates_the_extension_with_web_ext_lint() -> None:
    web_ext = _web_ext()
    if web_ext is None:
        pytest.skip("web-ext is not installed (npm install --prefix .ci/node web-ext)")
    result = subprocess.run(
        [web_ext, "lint", "--source-dir", str(EXTENSION), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["errors"] == 0, report["errors"]
    # The one manifest names a service worker for Chrome and scripts for Firefox, which
    # reads the scripts and warns that it does not run service workers: that alone.
    assert [w["code"] for w in report["warnings"]] in ([], ["MANIFEST_FIELD_UNSUPPORTED"])


@contextmanager
def _impostor() -> Iterator[tuple[str, list[str]]]:
    """Another web server of the machine (a dev server on a port yttl serve once had, or
    the one a user mistyped in the options): it answers everything, and keeps every
    Authorization header it is sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers.get("Authorization") or "")
            body = b'{"proof": "%s"}' % (b"0" * 64) if "challenge" in self.path else b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_token_goes_only_to_a_server_that_proves_it_holds_it(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The extension kept the URL it was paired with and sent the token to whatever
    answered there later (a server stopped, its port taken by another), or to a mistyped
    port: now it sends the challenge of the native host first, and the token only after
    the right answer."""
    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(tmp_path / "out")]
    with (
        running_server(args, env) as (base, token, _),
        _impostor() as (other, seen),
        _browser(tmp_path / "profile") as (context, extension_id),
    ):
        options = context.new_page()
        options.goto(f"chrome-extension://{extension_id}/options.html")
        options.fill("[data-yttl=server]", other)  # the port of another server
        options.fill("[data-yttl=token]", token)
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status]:not(:empty)")
        assert options.get_attribute("[data-yttl=status]", "class") == "bad"
        assert "not the yttl serve" in options.inner_text("[data-yttl=status]")
        options.fill("[data-yttl=server]", base)  # the right one: paired
        options.click("[data-yttl=save]")
        options.wait_for_selector("[data-yttl=status].good")

        worker = context.service_workers[0]  # later, that port is another server's
        worker.evaluate(f"chrome.storage.local.set({{server: {json.dumps(other)}}})")
        _route_youtube(context, _media(tmp_path))
        page = context.new_page()
        page.goto(f"https://www.youtube.com/watch?v={KNOWN}")
        page.wait_for_selector("[data-yttl=summarize][data-yttl-state=error]")
        assert "not the yttl serve" in (page.get_attribute("[data-yttl=summarize]", "title") or "")
        assert seen and not [s for s in seen if token in s]  # asked, never given the token
