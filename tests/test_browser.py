"""The HTML page in a real browser: Debian's headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_render import _result, _video
from yttl.render import render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]  # fmt: skip
PAYLOAD = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
# Headless Chromium lays out --dump-dom pages at least 500 px wide, so the page is measured
# inside a 390 px iframe (a phone's width), from a wrapper page that reads its DOM.
WRAPPER = """<!doctype html><body><iframe id="phone" src="page.html" width="390" height="844">
</iframe><script>
document.getElementById('phone').addEventListener('load', function () {
  var doc = this.contentDocument, body = document.body;
  body.setAttribute('data-scroll-width', doc.documentElement.scrollWidth);
  body.setAttribute('data-font-size', doc.defaultView.getComputedStyle(doc.querySelector('div.section p')).fontSize);
  body.setAttribute('data-pwned', doc.body.getAttribute('data-pwned') || 'no');
  body.setAttribute('data-sections', doc.querySelectorAll('div.section').length);
  body.setAttribute('data-stamps', doc.querySelectorAll('a.stamp[href^="https://www.youtube.com/watch?v=abc123&t="]').length);
});
</script></body>"""


def _chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None, "CI must install Debian's chromium"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _measure(tmp_path: Path, long_word: bool = False) -> dict[str, str]:
    title = PAYLOAD + "Supercalifragilistic" * (9 if long_word else 1)
    (tmp_path / "page.html").write_text(render(_result(_video(title=title)), "html"))
    (tmp_path / "wrapper.html").write_text(WRAPPER)
    dom = _chromium(tmp_path, "--allow-file-access-from-files", "--dump-dom",
                    (tmp_path / "wrapper.html").as_uri())  # fmt: skip
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', dom.split("<body", 1)[1].split(">", 1)[0]))


def test_the_dom_after_scripts_holds_every_section_and_no_injection(tmp_path: Path) -> None:
    found = _measure(tmp_path)
    assert found["pwned"] == "no"  # the onerror in the title did not run
    assert found["sections"] == "3"
    assert int(found["stamps"]) >= 5


def test_the_page_fits_a_phone_screen(tmp_path: Path) -> None:
    found = _measure(tmp_path, long_word=True)
    assert int(found["scroll-width"]) <= 390  # no sideways scrolling, even with a long word
    assert float(found["font-size"].removesuffix("px")) >= 16
    shot = tmp_path / "phone.png"
    _chromium(tmp_path, "--window-size=390,844", f"--screenshot={shot}",
              (tmp_path / "page.html").as_uri())  # fmt: skip
    assert shot.read_bytes()[16:24] == (390).to_bytes(4, "big") + (844).to_bytes(4, "big")
    if os.environ.get("YTTL_SCREENSHOT_DIR"):  # to look at it: the file tool shows PNGs
        shutil.copy(shot, Path(os.environ["YTTL_SCREENSHOT_DIR"]) / "phone.png")


INDEX_WRAPPER = """<!doctype html><body><iframe id="phone" src="index.html" width="390" height="844">
</iframe><script>
document.getElementById('phone').addEventListener('load', function () {
  var doc = this.contentDocument, body = document.body;
  body.setAttribute('data-scroll-width', doc.documentElement.scrollWidth);
  body.setAttribute('data-font-size', doc.defaultView.getComputedStyle(doc.querySelector('li.video .small')).fontSize);
  body.setAttribute('data-pwned', doc.body.getAttribute('data-pwned') || 'no');
  body.setAttribute('data-videos', doc.querySelectorAll('li.video').length);
  body.setAttribute('data-failed', doc.querySelectorAll('.status.failed').length);
  body.setAttribute('data-links', doc.querySelectorAll('.title a[href$=".html"]').length);
  body.setAttribute('data-error', doc.querySelector('li.video:last-child p.error').textContent);
});
</script></body>"""


def test_the_batch_index_lists_every_video_and_fits_a_phone(tmp_path: Path) -> None:
    from yttl.batch import VideoOutcome, outcome_of
    from yttl.errors import InputError
    from yttl.render.index import index_html
    from yttl.sources.playlists import BatchEntry

    out = tmp_path
    long_title = PAYLOAD + "Supercalifragilistic" * 9
    done = outcome_of(BatchEntry("a", "a"), _result(_video(title=long_title)))
    done.outputs = [out / "abc123.html", out / "abc123.json"]
    broken = VideoOutcome(BatchEntry("nope.mp4", PAYLOAD + "nope.mp4"), "failed", 2,
                          error=InputError(f"{PAYLOAD} no such file"))  # fmt: skip
    (out / "index.html").write_text(index_html([done, broken], out))
    (out / "wrapper.html").write_text(INDEX_WRAPPER)
    dom = _chromium(tmp_path, "--allow-file-access-from-files", "--dump-dom",
                    (out / "wrapper.html").as_uri())  # fmt: skip
    found = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', dom.split("<body", 1)[1].split(">", 1)[0]))
    assert found["pwned"] == "no"
    assert found["videos"] == "2" and found["failed"] == "1" and found["links"] == "1"
    assert "no such file" in found["error"] and found["error"].startswith("input: ")
    assert int(found["scroll-width"]) <= 390
    assert float(found["font-size"].removesuffix("px")) >= 14
    shot = tmp_path / "index-phone.png"
    _chromium(
        tmp_path, "--window-size=390,844", f"--screenshot={shot}", (out / "index.html").as_uri()
    )
    assert shot.read_bytes()[16:24] == (390).to_bytes(4, "big") + (844).to_bytes(4, "big")
    if os.environ.get("YTTL_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["YTTL_SCREENSHOT_DIR"]) / "index-phone.png")


CONTENTS_WRAPPER = """<!doctype html><body><iframe id="phone" src="page.html" width="390" height="844">
</iframe><script>
document.getElementById('phone').addEventListener('load', function () {
  var doc = this.contentDocument, body = document.body, links = doc.querySelectorAll('nav.toc a');
  var ok = Array.prototype.every.call(links, function (a) { return doc.getElementById(a.getAttribute('href').slice(1)); });
  body.setAttribute('data-scroll-width', doc.documentElement.scrollWidth);
  body.setAttribute('data-links', links.length);
  body.setAttribute('data-targets', ok ? 'all' : 'missing');
  body.setAttribute('data-first', doc.querySelector('main > section, main > nav').className);
  body.setAttribute('data-lang', doc.documentElement.lang);
});
</script></body>"""


def test_a_long_videos_page_has_its_overview_and_contents_linking_to_every_hour(
    tmp_path: Path,
) -> None:
    import dataclasses

    result = dataclasses.replace(_result(_video(title="A long stream")),
                                 summary="The stream covers memory, then sleep.",
                                 summary_language="German")  # fmt: skip
    (tmp_path / "page.html").write_text(render(result, "html"))
    (tmp_path / "wrapper.html").write_text(CONTENTS_WRAPPER)
    dom = _chromium(tmp_path, "--allow-file-access-from-files", "--dump-dom",
                    (tmp_path / "wrapper.html").as_uri())  # fmt: skip
    found = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', dom.split("<body", 1)[1].split(">", 1)[0]))
    assert found["links"] == "2" and found["targets"] == "all"  # every hour is a target
    assert found["first"] == "overview" and found["lang"] == "de"
    assert int(found["scroll-width"]) <= 390
