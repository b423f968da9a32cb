"""``yttl serve`` in a real browser (Playwright on Debian's Chromium): log in through the
printed URL, submit a job, watch it finish, open the video, click a timestamp, search,
ask, and every page at a phone's width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.support.browser import need_browser, running_server, wait_until
from tests.support.server import LoopbackServer
from tests.support.synthetic import caption_text, synthetic_video

pytestmark = pytest.mark.browser


def _silent_media(path: Path, seconds: int) -> None:
    rate = 8000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, seconds * rate), dtype=np.int16), format="s16", layout="mono"
        )
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def _no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_the_pages_in_a_browser(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    media = tmp_path / "lecture.flac"
    _silent_media(media, 420)
    (tmp_path / "lecture.en.vtt").write_text(caption_text(420))
    info = synthetic_video(
        server, tmp_path, "abcdefghijk", seconds=900, title="Sleep & <b>memory</b>"
    )
    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(tmp_path / "out")]
    with running_server(args, env) as (base, token, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        blocked: list[str] = []  # what the pages' Content-Security-Policy refused: nothing
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        page.goto(f"{base}/jobs?token={token}")
        assert page.url == f"{base}/jobs"  # the token left the address bar
        assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
        page.fill("#sources", f"{media}\n{info}")
        page.click("#new-job button[type=submit]")
        page.wait_for_selector('.job[data-status="ok"]', timeout=60_000)
        # the finished job's list comes with the refresh that follows its "done" event
        wait_until(page, "document.querySelectorAll('.job-videos li').length === 2", timeout=30)

        page.goto(base + "/")
        titles = page.locator(".video-title").all_inner_texts()
        assert sorted(titles) == ["Sleep & <b>memory</b>", "lecture"]  # escaped, not markup
        page.click("text=lecture")
        page.wait_for_selector("video#player")
        page.click('.section a.stamp[data-t="300"]')
        wait_until(page, "Math.abs(document.getElementById('player').currentTime - 300) < 2")
        assert page.locator(".section.current").count() == 1

        page.fill("[data-yttl=chat-input]", "what about sleep?")
        server.state.reply = lambda messages: "Sleep comes up here [5:20]."
        page.click("[data-yttl=chat-send]")
        page.wait_for_selector("[data-yttl=chat-answer] .chat-text ~ .citations a.stamp")
        page.click("[data-yttl=chat-answer] .chat-text ~ .citations a.stamp")
        wait_until(page, "Math.abs(document.getElementById('player').currentTime - 320) < 2")

        page.goto(f"{base}/search")
        page.fill("#q", "attention")
        page.wait_for_selector(".hit")
        first = page.locator(".hit a.hit-title").first
        assert "?t=" in (first.get_attribute("href") or "")
        first.click()
        page.wait_for_url("**/v/**")

        page.set_viewport_size({"width": 390, "height": 844})
        for path in ("/", "/v/abcdefghijk", "/search?q=sleep", "/jobs"):
            page.goto(base + path)
            assert _no_sideways_scroll(page), path
        assert blocked == []
        page.goto(base + "/v/abcdefghijk")
        page.screenshot(path=str(tmp_path / "video-phone.png"), full_page=False)

        other = browser.new_page()  # no session: the login form, not the library
        other.goto(base + "/")
        assert other.locator('input[name="token"]').count() == 1
        other.fill('input[name="token"]', token)
        other.click("button[type=submit]")
        other.wait_for_selector(".video-title")
        browser.close()
