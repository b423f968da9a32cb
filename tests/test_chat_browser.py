"""Chat on the pages of ``yttl serve``, in Playwright's Chromium: the answer grows while the
fake provider streams it (one word at a time, when the test lets it), its timestamps seek
the player, a follow-up that names nothing is answered from the thread's video with the
first turn in what the model is sent, a failed stream is said and not kept, the thread is
still there after the server starts again, and the library page chats over every video."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import need_browser, running_server, wait_until
from tests.support.chat import FIRST, FOLLOW_UP, LAB, chat_library, lab_reply, silent_media
from tests.support.server import LoopbackServer, StreamGate

pytestmark = pytest.mark.browser

ANSWER = "[data-yttl=chat-answer]"
TEXT = f"document.querySelectorAll('{ANSWER} .chat-text')"


def _length(page: Any, index: int) -> int:
    return int(page.evaluate(f"{TEXT}[{index}] ? {TEXT}[{index}].textContent.length : 0"))


def _thread(base: str, token: str, chat_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/api/v1/chats/{chat_id}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request) as response:
        thread: dict[str, Any] = json.load(response)
    return thread


def test_chat_streams_on_the_page_follows_up_and_is_kept(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    chromium = need_browser()
    from playwright.sync_api import sync_playwright

    library = tmp_path / "library.sqlite"
    chat_library(library, silent_media(tmp_path / "lab.flac", 900))
    server.state.reply = lab_reply
    gate = StreamGate(free=1)
    server.state.stream_pace = gate
    env = {**clean_env, "OPENAI_API_KEY": "sk-loopback-0123456789"}
    args = [
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
        "--library-path",
        str(library),
        "--retry-max-attempts",
        "1",
        "-o",
        str(tmp_path / "out"),
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        blocked: list[str] = []  # what the pages' Content-Security-Policy refused: nothing
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        posts: list[Any] = []  # the chat's requests, each with the session's CSRF token
        page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
        with running_server(args, env) as (base, token, _):
            page.goto(f"{base}/v/{LAB}?token={token}")
            # the token came in the login redirect's fragment and is kept by app.js
            csrf = page.evaluate("localStorage.getItem('yttl-csrf')")
            assert csrf
            page.fill("[data-yttl=chat-input]", FIRST)
            page.click("[data-yttl=chat-send]")
            # one word is out; the next waits for the test: the page shows a part
            wait_until(page, f"{TEXT}.length === 1 && {TEXT}[0].textContent.length > 0")
            partial = [_length(page, 0)]
            gate.release()
            wait_until(page, f"{TEXT}[0].textContent.length > {partial[0]}")
            partial.append(_length(page, 0))
            assert page.get_attribute(ANSWER, "data-state") == "streaming"  # not done yet
            gate.open()
            done = f"{ANSWER}[data-state=done]"
            page.wait_for_selector(f"{done} .chat-text ~ .citations a[data-yttl-t='300']")
            assert len(set(partial)) == 2 and partial[0] < partial[1]
            chat_posts = [r for r in posts if "/api/v1/chats" in r.url]
            assert len(chat_posts) == 2  # the thread, then the question
            for request in chat_posts:
                sent = request.all_headers()
                assert sent.get("x-yttl-csrf") == csrf and sent.get("origin") == base
            assert _length(page, 0) > partial[1]
            assert "nap helps" in page.inner_text(f"{done} .chat-text")

            wait_until(page, "document.getElementById('player').readyState >= 1")
            page.click(f"{done} .chat-text ~ .citations a[data-yttl-t='300']")
            wait_until(page, "Math.abs(document.getElementById('player').currentTime - 300) < 2")

            page.fill("[data-yttl=chat-input]", FOLLOW_UP)
            page.click("[data-yttl=chat-send]")
            wait_until(page, f"document.querySelectorAll('{ANSWER}[data-state=done]').length === 2")
            second = page.locator(ANSWER).nth(1)
            assert "Maria Lopez" in second.locator(".chat-text").inner_text()
            assert second.locator(".chat-text ~ .citations a[data-yttl-t='600']").count() == 1
            sent = server.state.calls[-1].messages
            assert {"role": "user", "content": FIRST} in sent
            assert sent[-1]["content"].endswith(f"Question: {FOLLOW_UP}")

            server.state.stream_break = lambda call, index: index == 2
            page.fill("[data-yttl=chat-input]", "and what did they find?")
            page.click("[data-yttl=chat-send]")
            page.wait_for_selector("[data-yttl=chat-error]")
            assert page.locator(ANSWER).count() == 2  # the broken one is no answer
            chat_id = page.evaluate("document.querySelector('[data-yttl-chat]').dataset.thread")
            kept = _thread(base, token, chat_id)["messages"]
            assert [m["role"] for m in kept] == ["user", "assistant", "user", "assistant", "user"]
            assert "broke off" in kept[-1]["error"]
            server.state.stream_break = None

        with running_server(args, env) as (base, token, _):  # started again: still there
            page.goto(f"{base}/v/{LAB}?token={token}")
            page.wait_for_selector(f"{ANSWER} .chat-text ~ .citations a[data-yttl-t='600']")
            assert page.locator(ANSWER).count() == 2
            assert page.locator("[data-yttl=chat-error]").count() == 1
            assert page.locator(".chat-threads a").count() == 2  # the thread, and a new one

            page.goto(f"{base}/")  # the whole library
            page.fill("[data-yttl=chat-input]", "who ran the sleep experiment?")
            page.click("[data-yttl=chat-send]")
            page.wait_for_selector(
                f"{ANSWER}[data-state=done] .chat-text ~ .citations a[data-yttl-t]"
            )
            sources = page.locator(f"{ANSWER} .chat-sources a[data-yttl-t]")
            videos = {sources.nth(i).get_attribute("data-video") for i in range(sources.count())}
            assert len(videos) == 2
        assert blocked == []
        browser.close()
