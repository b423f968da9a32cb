"""``yttl search``, ``yttl list``, ``yttl show`` and ``yttl library import``: the library
from the command line. Parse, ask the library, print; they import nothing heavy."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from yttl.config import Settings, library_path, load_settings
from yttl.errors import UsageError
from yttl.library import MARK, Library
from yttl.render.links import format_clock

__all__ = ["run_library_command"]


def _settings(ns: argparse.Namespace) -> Settings:
    flags = {key: getattr(ns, key, None) for key in
             ("library_path", "llm_provider", "openai_model", "openai_base_url",
              "embed_provider", "embed_model", "embed")}  # fmt: skip
    settings, _ = load_settings(flags, config_file=ns.config)
    return settings


def _query_vector(ns: argparse.Namespace, library: Library, mode: str | None,
                  console: Console) -> tuple[str, Any, str | None]:  # fmt: skip
    """(mode, the query's vector, its model): see ``yttl.embed.indexing.query_vector``."""
    import asyncio
    import functools

    from yttl.embed import build_embedder
    from yttl.embed.indexing import EmbedderHolder, query_vector

    if mode is not None and mode != "words" and not library.vector_models():
        console.print("yttl: the library has no vectors yet; searching by words (yttl library "
                      "reindex embeds it)", highlight=False, markup=False,
                      soft_wrap=True)  # fmt: skip
        return "words", None, None
    holder = EmbedderHolder(functools.partial(build_embedder, _settings(ns)))

    async def find() -> tuple[str, Any, str | None]:
        try:
            return await query_vector(library, holder, " ".join(ns.query), mode)
        finally:
            await holder.aclose()

    return asyncio.run(find())


def _open(ns: argparse.Namespace) -> Library:
    return Library(library_path(_settings(ns)))


def _ask(ns: argparse.Namespace, console: Console) -> int:
    import asyncio

    from yttl.ask import ask

    words = list(ns.words)
    if ns.all and ns.video:
        raise UsageError("give --all or --video, not both", hint="see yttl ask --help")
    if ns.all or ns.video:
        videos = None if ns.all else list(ns.video)
    elif len(words) >= 2:
        videos = [words.pop(0)]
    else:
        raise UsageError("give a video ID and a question, or --all QUESTION",
                         hint="see yttl ask --help")  # fmt: skip
    if not words:
        raise UsageError("no question given", hint="see yttl ask --help")
    answer = asyncio.run(ask(_open(ns), videos, " ".join(words), _settings(ns)))
    if ns.json:
        print(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    for citation in answer.citations:
        print(f"  {format_clock(citation.start)}  {citation.url}")
    if answer.dropped:
        console.print(f"yttl: dropped {len(answer.dropped)} citation(s) that match no part "
                      f"the answer was given: {', '.join(answer.dropped)}", highlight=False,
                      markup=False)  # fmt: skip
    return 0


def _say_empty(library: Library, console: Console) -> None:
    console.print(f"yttl: the library at {library.path} is empty; summarize a video "
                  "(yttl URL) or take in earlier runs (yttl library import DIR)",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip


def _search(ns: argparse.Namespace, console: Console) -> int:
    if ns.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {ns.limit}",
                         hint="see yttl search --help")  # fmt: skip
    library = _open(ns)
    mode, vector, model = _query_vector(ns, library, ns.mode, console)
    hits = library.search(" ".join(ns.query), limit=ns.limit, video=ns.video, mode=mode,
                          vector=vector, model=model)  # fmt: skip
    if not hits and library.is_empty():
        _say_empty(library, console)  # on stderr: --json stays a list
    if ns.json:
        print(json.dumps([hit.as_dict() for hit in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        if not library.is_empty():
            console.print("no section matches", highlight=False)
        return 0
    table = Table(show_header=True, header_style="bold", expand=True)
    for name in ("video", "at", "snippet", "link"):
        table.add_column(name, overflow="fold")
    for hit in hits:
        snippet = escape(hit.snippet)
        for mark in set(MARK):
            snippet = snippet.replace(escape(mark), "[bold yellow]", 1).replace(
                escape(mark), "[/bold yellow]", 1
            )  # fmt: skip
        table.add_row(escape(hit.title), format_clock(hit.start), snippet, escape(hit.url))
    console.print(table)
    return 0


def _list(ns: argparse.Namespace, console: Console) -> int:
    library = _open(ns)
    videos = library.videos()
    if not videos:
        _say_empty(library, console)
    if ns.json:
        print(json.dumps(videos, indent=2, ensure_ascii=False))
        return 0
    if not videos:
        return 0
    table = Table(show_header=True, header_style="bold", expand=True)
    for name in ("id", "title", "length", "sections", "model"):
        table.add_column(name, overflow="fold")
    for video in videos:
        length = format_clock(video["duration"] or 0)
        table.add_row(escape(video["id"]), escape(video["title"]), length,
                      str(video["sections"]), escape(video["model"] or "-"))  # fmt: skip
    console.print(table)
    return 0


def _show(ns: argparse.Namespace, console: Console) -> int:
    from rich.markdown import Markdown

    from yttl.render.markdown import markdown_from_view

    document = _open(ns).document(ns.id)
    if ns.format == "json":
        print(json.dumps(document, indent=2, ensure_ascii=False))
    elif console.is_terminal:
        Console().print(Markdown(markdown_from_view(document)))
    else:
        print(markdown_from_view(document), end="")
    return 0


def _reindex(ns: argparse.Namespace, console: Console) -> int:
    import asyncio

    from rich.progress import Progress

    from yttl.embed import build_embedder
    from yttl.embed.indexing import reindex

    library = _open(ns)
    settings = _settings(ns)
    embedder = build_embedder(settings if settings.embed else
                              dataclasses.replace(settings, embed=True))  # fmt: skip
    assert embedder is not None

    async def run() -> int:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"embedding with {embedder.name}", total=None)

            def step(done: int, total: int, video_id: str) -> None:
                bar.update(task, total=total, completed=done, description=f"embedded {video_id}")

            try:
                return await reindex(library, embedder, step)
            finally:
                await embedder.aclose()

    count = asyncio.run(run())
    console.print(f"yttl: embedded {count} video(s) with {embedder.name}; the library at "
                  f"{library.path} searches by meaning", highlight=False,
                  soft_wrap=True)  # fmt: skip
    return 0


def _import(ns: argparse.Namespace, console: Console) -> int:
    if ns.action == "reindex":
        return _reindex(ns, console)
    if ns.directory is None:
        raise UsageError("library import needs the folder earlier runs wrote to",
                         hint="see yttl library --help")  # fmt: skip
    taken, refused = _open(ns).import_outputs(Path(ns.directory))
    console.print(f"yttl: took in {taken} video(s) from {ns.directory}", highlight=False)
    for path, why in refused:
        console.print(f"  skipped {path}: {why}", highlight=False, markup=False)
    return 0


def _parser(make: Callable[..., argparse.ArgumentParser], command: str) -> argparse.ArgumentParser:
    parser = make(prog=f"yttl {command}", allow_abbrev=False)
    parser.add_argument("--library-path", metavar="PATH", help="the library's SQLite file")
    parser.add_argument("--config", type=Path, metavar="PATH")
    if command in ("search", "ask", "library"):
        parser.add_argument("--embed-provider", metavar="NAME",
                            help="local, openai or a profile (default local)")  # fmt: skip
        parser.add_argument("--embed-model", metavar="NAME", help="the embedding model")
    if command == "search":
        parser.add_argument("query", nargs="+", metavar="QUERY")
        parser.add_argument("--json", action="store_true", help="hits as JSON")
        parser.add_argument("--limit", type=int, default=10, metavar="N")
        parser.add_argument("--video", metavar="ID", help="search one video only")
        parser.add_argument("--mode", choices=("words", "meaning", "hybrid"),
                            help="by words, by meaning, or both fused (default: hybrid when "
                            "the library has vectors)")  # fmt: skip
    elif command == "list":
        parser.add_argument("--json", action="store_true")
    elif command == "ask":
        parser.usage = ("yttl ask ID QUESTION | yttl ask --all QUESTION | "
                        "yttl ask --video ID [--video ID ...] QUESTION")  # fmt: skip
        parser.add_argument("words", nargs="+", metavar="[ID] QUESTION")
        parser.add_argument("--all", action="store_true", help="ask the whole library")
        parser.add_argument("--video", action="append", metavar="ID",
                            help="ask these videos (repeatable)")  # fmt: skip
        parser.add_argument("--json", action="store_true",
                            help="{answer, citations, sources} as JSON")  # fmt: skip
        parser.add_argument("-lp", "--llm-provider", help="the LLM to ask (default: configured)")
        parser.add_argument("-om", "--openai-model")
        parser.add_argument("-ou", "--openai-base-url")
    elif command == "show":
        parser.add_argument("id", metavar="ID")
        parser.add_argument("-f", "--format", choices=("md", "json"), default="md")
    else:
        parser.add_argument("action", choices=("import", "reindex"))
        parser.add_argument("directory", metavar="DIR", nargs="?",
                            help="import: where earlier runs wrote JSON")  # fmt: skip
    return parser


def run_library_command(argv: Sequence[str], console: Console,
                        make: Callable[..., argparse.ArgumentParser]) -> int:  # fmt: skip
    """``argv`` starts with the command's name; ``make`` builds the CLI's parser class."""
    command, rest = argv[0], argv[1:]
    ns = _parser(make, command).parse_args(rest)
    handlers: dict[str, Callable[[argparse.Namespace, Console], int]] = {
        "search": _search, "list": _list, "show": _show, "library": _import, "ask": _ask,
    }  # fmt: skip
    result: Any = handlers[command](ns, console)
    return int(result)
