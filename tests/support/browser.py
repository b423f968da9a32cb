"""Debian's Chromium under Playwright, and ``yttl serve`` started as a user starts it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOGIN = re.compile(r"(http://127\.0\.0\.1:\d+/)\?token=(\S+)")


def need_browser() -> str:
    """The Chromium path, or a skip with its reason (CI installs it: there it must be)."""
    pytest.importorskip("playwright", reason="playwright (the dev extra) is not installed")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def wait_until(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Wait for a JavaScript expression to be true on a page of ``yttl serve``. Playwright's
    ``wait_for_function`` re-checks it with ``eval`` from the page's own timers, which the
    pages' CSP (no eval) refuses; ``page.evaluate`` runs it through the DevTools protocol."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        page.wait_for_timeout(50)


@contextmanager
def running_server(args: list[str], env: dict[str, str]) -> Iterator[tuple[str, str, list[str]]]:
    """``yttl serve --port 0 ARGS``: (base URL, token, the lines it printed)."""
    process = subprocess.Popen([sys.executable, "-m", "yttl", "serve", "--port", "0", *args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    try:
        for line in process.stderr:
            lines.append(line)
            found = LOGIN.search(line)
            if found:
                break
        else:
            raise AssertionError("yttl serve printed no login URL: " + "".join(lines))
        threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True).start()
        yield found.group(1).rstrip("/"), found.group(2), lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
