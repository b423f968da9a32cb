"""``--executor ray`` on a local Ray instance: same results as at home, one provider
budget for every worker, Whisper in an actor."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_yttl
from tests.support.outputs import output_of
from tests.support.server import LoopbackServer
from tests.support.videos import AUDIO, serve_video, video_ids
from tests.support.whisper import MODEL_DIR

pytestmark = pytest.mark.corpus  # every test here reads ../shared/data

pytest.importorskip("ray", reason="the ray extra is not installed")


def _summaries(path: Path) -> list[Any]:
    doc = json.loads(path.read_text())
    return [(h["summary"], [(s["start"], s["summary"], s["status"]) for s in h["sections"]])
            for h in doc["hours"]]  # fmt: skip


def test_a_batch_on_ray_matches_the_local_executor_under_one_budget(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.latency = 0.2
    ids = video_ids()[:3]
    sources = [str(serve_video(server, vid, tmp_path)) for vid in ids]
    media = tmp_path / "jfk.flac"
    media.write_bytes((AUDIO / "jfk.flac").read_bytes())
    common = ["-lp", "openai", "-ou", server.openai_base_url, "-f", "json", "--no-open",
              "--max-concurrent-llm", "2", "-lwm", MODEL_DIR, "--max-concurrent-videos", "4"]  # fmt: skip
    on_ray = run_yttl([*sources, str(media), *common, "-o", str(tmp_path / "ray"),
                       "--executor", "ray"], clean_env, timeout=300)  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stderr
    assert server.state.max_in_flight == 2  # the budget actor kept one limit for all workers
    ray_calls = len(server.state.calls)
    assert ray_calls == 3 * 3 + 1  # three episodes of 2 sections + an hour, and jfk's one
    # the Whisper actor kept jfk's chunk as it finished, where a rerun would resume it
    with sqlite3.connect(Path(clean_env["XDG_CACHE_HOME"]) / "yttl" / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM chunks WHERE covered IS NULL").fetchone()[0] == 1

    clean_env["XDG_CACHE_HOME"] = str(tmp_path / "other-cache")  # no reuse: really run again
    local = run_yttl([*sources, str(media), *common, "-o", str(tmp_path / "local")], clean_env,
                     timeout=300)  # fmt: skip
    assert local.returncode == 0, local.stderr
    jfk_json = output_of(Path("."), media, "json").name
    for name in [*(f"{vid}.json" for vid in ids), jfk_json]:
        assert _summaries(tmp_path / "ray" / name) == _summaries(tmp_path / "local" / name)
    index = json.loads((tmp_path / "ray" / "index.json").read_text())
    assert [v["status"] for v in index["videos"]] == ["ok"] * 4
    jfk = json.loads((tmp_path / "ray" / jfk_json).read_text())
    assert jfk["transcript"]["source"] == "local_whisper"  # in the Whisper actor
    assert "ask not what your country" in " ".join(
        c.user for c in server.state.calls[:ray_calls]
    ).lower().replace(",", "")
