"""Batches end to end: playlists (a saved file, and a URL read by yt-dlp), batch files,
one provider budget for every video, reruns and Ctrl-C, on real episodes on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.videos import AUDIO, serve_video, two_hour_video, video_ids
from tests.support.whisper import MODEL_DIR
from yttl.sources.playlists import PlaylistSelection, expand_sources

pytestmark = pytest.mark.corpus  # every test here reads ../shared/data


def _args(server: LoopbackServer, out: Path, *extra: str) -> list[str]:
    return ["-lp", "openai", "-ou", server.openai_base_url, "-o", str(out), "--no-open",
            "-f", "json", "-f", "html", *extra]  # fmt: skip


def _playlist(server: LoopbackServer, directory: Path, count: int) -> tuple[Path, list[str]]:
    """A saved playlist (``yt-dlp -J`` of a playlist) whose entries are real episodes."""
    ids = video_ids()[:count]
    entries = [json.loads(serve_video(server, vid, directory).read_text()) for vid in ids]
    path = directory / "course.info.json"
    path.write_text(json.dumps({"_type": "playlist", "id": "PLcourse", "title": "A course",
                                "entries": entries}))  # fmt: skip
    return path, ids


def _index(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "index.json").read_text())
    return data


def test_a_saved_playlist_runs_every_entry_and_writes_an_index(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    playlist, ids = _playlist(server, tmp_path, 3)
    out = tmp_path / "out"
    result = run_yttl([str(playlist), *_args(server, out)], clean_env)
    assert result.returncode == 0, result.stderr
    index = _index(out)
    assert [v["id"] for v in index["videos"]] == ids
    assert {v["status"] for v in index["videos"]} == {"ok"} and index["counts"] == {"ok": 3}
    for video in index["videos"]:
        assert video["sections_done"] == video["sections_total"] >= 2
        assert video["playlist"] == "A course"
        assert (out / video["outputs"]["json"]).is_file()
        doc = json.loads((out / video["outputs"]["json"]).read_text())
        assert doc["video"]["id"] == video["id"]
    html = (out / "index.html").read_text()
    assert all(f'href="{i}.html"' in html for i in ids)
    assert "3 videos" in result.stderr

    # The same command again makes no call: everything comes from the cache.
    calls = len(server.state.calls)
    again = run_yttl([str(playlist), *_args(server, out)], clean_env)
    assert again.returncode == 0, again.stderr
    assert len(server.state.calls) == calls


@pytest.mark.parametrize(("extra", "chosen"), [
    (["--playlist-items", "1,3"], [0, 2]),
    (["--playlist-items=-2:"], [1, 2]),
    (["--playlist-items", "-2:"], [1, 2]),  # a value that starts with a dash
    (["--max-videos", "2"], [0, 1]),
    (["--playlist-items", "2-3", "--max-videos", "1"], [1]),
])  # fmt: skip
def test_playlist_items_and_max_videos_choose_entries(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str], extra: list[str],
    chosen: list[int],
) -> None:  # fmt: skip
    playlist, ids = _playlist(server, tmp_path, 3)
    out = tmp_path / "out"
    result = run_yttl([str(playlist), *_args(server, out, "--transcript-only", *extra)],
                      clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [v["id"] for v in _index(out)["videos"]] == [ids[i] for i in chosen]
    assert not server.state.calls  # transcript only: no LLM call


def test_a_batch_file_with_a_bad_line_runs_the_others_and_reports_the_worst(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    good = [serve_video(server, vid, tmp_path) for vid in video_ids()[:2]]
    batch = tmp_path / "videos.txt"
    batch.write_text(f"# my list\n{good[0]}\n\n{tmp_path / 'missing.mp4'}\n; also\n{good[1]}\n")
    out = tmp_path / "out"
    result = run_yttl(["-a", str(batch), *_args(server, out)], clean_env)
    assert result.returncode == 2, result.stderr  # the worst: an input error
    assert "Traceback" not in result.stderr
    videos = _index(out)["videos"]
    assert [v["status"] for v in videos] == ["ok", "failed", "ok"]
    assert (
        videos[1]["error"]["category"] == "input"
        and "no such file" in videos[1]["error"]["message"]
    )
    assert "missing.mp4: " in result.stderr and "no such file" in result.stderr
    html = (out / "index.html").read_text()
    assert "no such file" in html and html.count('class="status failed"') == 1


def test_every_video_of_a_batch_shares_one_provider_budget(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.latency = 0.15
    playlist, _ = _playlist(server, tmp_path, 4)
    result = run_yttl([str(playlist), *_args(server, tmp_path / "out", "--max-concurrent-llm",
                                             "3", "--max-concurrent-videos", "4")], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert server.state.max_in_flight == 3  # reached, never exceeded, across four videos
    starts = sorted(c.start for c in server.state.calls)
    # the videos overlap: calls of several videos are in flight together
    assert len(starts) >= 12


def test_queued_calls_never_time_out_while_they_wait_their_turn(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """27 calls of 0.5 s through 2 slots queue for up to 7 s; a 1.2 s timeout counted from
    the queue would fail most of them. Counted from sending, each goes once."""
    server.state.latency = 0.5
    info = two_hour_video(server, tmp_path)
    result = run_yttl([str(info), *_args(server, tmp_path / "out", "--max-concurrent-llm", "2",
                                         "--request-timeout", "1.2")], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(server.state.calls) == 27 and server.state.max_in_flight == 2
    doc = json.loads((tmp_path / "out" / "twohour-12.json").read_text())
    assert doc["stats"]["retries"] == 0 and not doc["failures"]


def test_ctrl_c_stops_the_whole_batch_and_a_rerun_finishes_it(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.latency = 0.4
    playlist, _ = _playlist(server, tmp_path, 5)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "yttl", str(playlist),
            *_args(server, out, "--max-concurrent-llm", "2", "--max-concurrent-videos", "1")]  # fmt: skip
    process = subprocess.Popen(args, env=clean_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(server.state.successful_calls()) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    statuses = [v["status"] for v in _index(out)["videos"]]
    assert len(statuses) == 5 and "interrupted" in statuses
    assert set(statuses) <= {"ok", "interrupted"}
    finished = [v for v in _index(out)["videos"] if v["status"] == "ok"]
    assert all((out / v["outputs"]["json"]).is_file() for v in finished)
    started = len(server.state.calls)
    assert started < 5 * 3  # nothing new started after Ctrl-C

    server.state.latency = 0.0
    rerun = run_yttl([str(playlist), *_args(server, out)], clean_env)
    assert rerun.returncode == 0, rerun.stderr
    assert [v["status"] for v in _index(out)["videos"]] == ["ok"] * 5
    answered = Counter(c.user for c in server.state.successful_calls())
    assert set(answered.values()) == {1}  # no prompt answered twice


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def podcast(tmp_path: Path) -> Any:
    """A podcast feed (RSS) on 127.0.0.1 whose three episodes are real speech files."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    items = []
    for name, day in (("a", 1), ("b", 2), ("c", 3)):
        (root / f"{name}.flac").write_bytes((AUDIO / "jfk.flac").read_bytes())
        items.append(f"<item><title>Episode {name.upper()}</title><guid>ep-{name}</guid>"
                     f"<pubDate>Mon, 0{day} Jan 2024 10:00:00 GMT</pubDate>"
                     f'<enclosure url="{base}/{name}.flac" type="audio/flac" length="1"/></item>')  # fmt: skip
    (root / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Test podcast</title><link>{base}/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    )
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{base}/feed.xml"
    server.shutdown()
    server.server_close()


def test_a_playlist_url_is_read_flat_by_yt_dlp_and_selected(podcast: str) -> None:
    entries, batch = expand_sources([podcast], {"quiet": True}, PlaylistSelection(items="1,3"))
    assert batch and [e.label for e in entries] == ["Episode A", "Episode C"]
    assert all(e.playlist == "Test podcast" for e in entries)
    entries, _ = expand_sources([podcast], {"quiet": True},
                                PlaylistSelection(dateafter="20240102"))  # fmt: skip
    assert [e.label for e in entries] == ["Episode B", "Episode C"]


def test_a_playlist_url_end_to_end_with_one_whisper_model(
    podcast: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    result = run_yttl([podcast, "--max-videos", "2", "--transcript-only", "-f", "txt",
                       "-lwm", MODEL_DIR, "-o", str(out), "--no-open",
                       "--max-concurrent-videos", "2"], clean_env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    videos = _index(out)["videos"]
    assert [(v["id"], v["title"], v["status"]) for v in videos] == [
        ("ep-a", "Episode A", "ok"), ("ep-b", "Episode B", "ok")]  # fmt: skip
    for video in videos:
        text = (out / video["outputs"]["txt"]).read_text().lower()
        assert "ask not what your country can do for you" in text.replace(",", "")


def test_a_batch_paced_under_a_providers_rate_limit_gets_no_429(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The provider allows 6 calls in any 2 s; 170 a minute (5.7 in 2 s), shared by three
    videos, never goes over, though 16 calls may be in flight."""
    server.state.rate_limit = (6, 2.0)
    playlist, _ = _playlist(server, tmp_path, 3)
    result = run_yttl([str(playlist), *_args(server, tmp_path / "out", "--requests-per-minute",
                                             "170", "--max-concurrent-llm", "16")], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert server.state.rate_limited == 0
    assert len(server.state.successful_calls()) >= 9
