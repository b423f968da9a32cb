"""The attacks of issue 30 in a real browser: a page on another port of 127.0.0.1 (what a
developer's machine runs every day: dev servers, port forwards, notebooks) against a
signed-in ``yttl serve``, in Playwright's Chromium. Each fails; the pages still work
under their Content-Security-Policy."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.browser import need_browser, running_server
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.library import Library

pytestmark = pytest.mark.browser

FORM = """<!doctype html><form method="post" action="/go?to={to}" enctype="{enctype}">
<input name="sources" value="https://www.youtube.com/playlist?list=PLxyz">
<input name="_csrf" value="guessed"></form>"""
FRAME = """<!doctype html><p>Win a prize: click the button!</p>
<iframe src="{base}/jobs" width="900" height="600"></iframe>
<script>document.querySelector("iframe").onload = () => {{ window.framed = true; }};</script>"""
IMAGES = """<!doctype html><script>window.seen = 0;</script>{images}
<script>document.querySelectorAll("img").forEach((i) => {{
  const done = () => {{ window.seen += 1; }};
  if (i.complete) done(); else {{ i.onload = done; i.onerror = done; }} }});</script>"""

PROBE = """<!doctype html><body><script>
window.probe = (url, kind) => new Promise((resolve) => {
  const el = document.createElement(kind === "script" ? "script" : kind === "img" ? "img" : "link");
  if (kind === "prefetch" || kind === "css") {
    el.rel = kind === "css" ? "stylesheet" : "prefetch"; el.href = url;
  } else el.src = url;
  el.onload = () => resolve("load"); el.onerror = () => resolve("error");
  document.body.append(el); });
</script>"""


@contextmanager
def _other_port(base: str) -> Iterator[str]:
    """Another web server of the same machine: its pages, and a 307 to ``base``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _page(self, html: str) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/form":
                self._page(FORM.format(to=query["to"], enctype=query["enctype"]))
            elif parts.path == "/frame":
                self._page(FRAME.format(base=base))
            elif parts.path == "/probe":
                self._page(PROBE)
            elif parts.path == "/images":
                images = "".join(f'<img src="{base}/?token=wrong{n}">' for n in range(6))
                self._page(IMAGES.format(images=images))
            else:
                self._page("<!doctype html><p>a page of another port</p>")

        def do_POST(self) -> None:  # its form posts here; this sends the browser on
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            to = parse_qs(urlsplit(self.path).query)["to"][0]
            self.send_response(307)
            self.send_header("Location", base + to)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _api(base: str, token: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + "/api/v1" + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _settled(base: str, token: str) -> list[dict[str, Any]]:
    """The jobs, once none is queued or running."""
    for _ in range(600):
        jobs: list[dict[str, Any]] = _api(base, token, "/jobs")
        if all(j["status"] not in ("queued", "running") for j in jobs):
            return jobs
        time.sleep(0.1)
    raise AssertionError("the jobs did not settle")


def test_pages_of_another_port_cannot_start_jobs_frame_the_pages_or_lock_the_user_out(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(tmp_path / "out")]
    with (
        running_server(args, env) as (base, token, _),
        _other_port(base) as other,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{base}/jobs?token={token}")  # signed in, as the user is
        later = tmp_path / "later"
        later.mkdir()
        target = _api(base, token, "/jobs", {"sources": [str(later / "retried.info.json")]})["id"]
        assert [j["status"] for j in _settled(base, token)] == ["failed"]  # no such file yet
        synthetic_video(server, later, "retried")  # now a retry would summarize it

        attacks = [
            ("/jobs", "application/x-www-form-urlencoded"),
            ("/jobs", "multipart/form-data"),
            (f"/jobs/{target}/retry", "application/x-www-form-urlencoded"),
            (f"/api/v1/jobs/{target}/retry", "text/plain"),
        ]
        for to, enctype in attacks:
            page.goto(f"{other}/form?to={to}&enctype={enctype}")
            with page.expect_navigation(url=f"{base}{to}") as landed:
                page.evaluate("document.forms[0].submit()")
            assert landed.value is not None and landed.value.status == 403, (to, enctype)
        page.goto(f"{other}/")
        status = page.evaluate(
            """async (base) => {
            const body = new URLSearchParams({sources: "https://www.youtube.com/watch?v=zzzzzzzzzzz"});
            try {
              const r = await fetch("/go?to=/jobs", {method: "POST", mode: "no-cors", body});
              return r.type;
            } catch (error) { return "refused"; } }""",
            base,
        )
        # through the redirect, the server's refusal carries Cross-Origin-Resource-Policy
        assert status in ("opaque", "refused")
        jobs = _settled(base, token)  # nothing made, nothing run again
        assert [(j["id"], j["status"]) for j in jobs] == [(target, "failed")]
        assert _api(base, token, "/videos") == []

        page.goto(f"{other}/frame")  # clickjacking: the signed-in jobs page in a frame
        page.wait_for_function("window.framed === true")
        (framed,) = [f for f in page.frames if f != page.main_frame]
        assert framed.locator("#new-job").count() == 0 and framed.locator("button").count() == 0
        assert any("frame-ancestors 'none'" in v for v in violations)  # blocked by the CSP
        violations.clear()

        page.goto(f"{other}/images")  # six wrong logins from another site's <img> tags
        page.wait_for_function("window.seen === 6")
        mine = browser.new_page()
        mine.goto(f"{base}/?token={token}")  # the user's own login link still works
        assert mine.url == f"{base}/" and mine.locator("[data-yttl=logout]").count() == 1

        page.goto(f"{base}/jobs")  # the pages work under their CSP: a form, htmx, sign out
        page.fill("#sources", "/nowhere/second.mp4")
        page.click("#new-job button[type=submit]")
        page.wait_for_selector(".job >> nth=1")
        page.goto(f"{base}/search")
        page.fill("#q", "nothing-matches-this")
        page.wait_for_selector("#hits .empty")  # swapped in by htmx
        assert page.url.endswith("q=nothing-matches-this")
        page.click("[data-yttl=logout]")
        page.wait_for_selector('input[name="token"]')
        page.goto(f"{base}/jobs")
        assert page.locator('input[name="token"]').count() == 1  # signed out for good
        assert violations == []
        browser.close()


def test_pages_of_another_port_cannot_tell_what_is_in_the_library(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Cookies go with another port's <link rel=prefetch>, <script>, <img>: the load or
    error event of each told whether the user was signed in and whether a video was in
    the library (200 or 404). Now such loads are refused alike, whatever is there."""
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    known = "abcdefghijk"
    library = Path(clean_env["XDG_DATA_HOME"]) / "yttl" / "library.sqlite"
    video = {
        "id": known,
        "title": "Private talk",
        "source": "url",
        "extractor": "youtube",
        "url": f"https://www.youtube.com/watch?v={known}",
    }
    Library(library).record_document({"video": video, "hours": []})
    paths = [
        f"/api/v1/videos/{known}",
        "/api/v1/videos/zzzzzzzzzzz",
        f"/v/{known}",
        "/v/zzzzzzzzzzz",
    ]
    with (
        running_server([], clean_env) as (base, token, _),
        _other_port(base) as other,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        seen = {}
        for signed_in in (False, True):
            page = browser.new_page()
            if signed_in:
                page.goto(f"{base}/?token={token}")
                assert page.locator("[data-yttl=logout]").count() == 1
            page.goto(f"{other}/probe")
            for kind in ("prefetch", "script", "img", "css"):
                for path in paths:
                    seen[signed_in, kind, path] = page.evaluate(
                        "([url, kind]) => probe(url, kind)", [base + path, kind]
                    )
            page.close()
        browser.close()
    assert set(seen.values()) == {"error"}, seen  # nothing to tell apart


def test_back_after_sign_out_shows_no_page_of_the_library(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Signed out on a shared machine, the next person pressed Back and saw the jobs page
    again, from the browser's cache: no answer is kept now."""
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    with running_server([], clean_env) as (base, token, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/?token={token}")
        page.goto(f"{base}/jobs")
        assert page.locator("#jobs").count() == 1
        page.click("[data-yttl=logout]")
        page.wait_for_selector('input[name="token"]')
        page.go_back()
        page.wait_for_selector('input[name="token"]')  # asked again: signed out
        assert page.url == f"{base}/jobs" and page.locator("#jobs").count() == 0
        browser.close()
