"""``yttl search``, ``yttl list``, ``yttl show`` and ``yttl library import``: the library
from the command line. Parse, ask the library, print; they import nothing heavy."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yttl.cli.arguments import CONFIG_HELP
from yttl.config import Settings, library_path, load_settings
from yttl.errors import UsageError
from yttl.library import MARK, Library
from yttl.messages import count_of
from yttl.render.links import format_clock

if TYPE_CHECKING:  # rich is imported when there is a table to draw: --json needs none
    from rich.console import Console
    from rich.table import Table

    from yttl.embed.base import Embedder
    from yttl.embed.plan import SearchPlan
    from yttl.library.model import EmbedModel

Stderr = Callable[[], "Console"]
"""The console on stderr, made when first asked for (rich costs a third of the start)."""

__all__ = ["run_library_command"]


def _settings(ns: argparse.Namespace) -> Settings:
    flags = {key: getattr(ns, key, None) for key in
             ("library_path", "llm_provider", "openai_model", "openai_base_url",
              "embed_provider", "embed_model", "embed")}  # fmt: skip
    settings, _ = load_settings(flags, config_file=ns.config)
    return settings


def _note(text: str) -> None:
    """One line on stderr, without rich: --json keeps stdout clean, and the command starts
    faster for not importing it."""
    print(f"yttl: {text}", file=sys.stderr, flush=True)


def _print_rows(rows: Iterable[Sequence[str]]) -> None:
    """Into a pipe or a file: one tab-separated line a row, no header and no rich, for
    ``cut``, ``grep`` and scripts (and a start that does not import rich)."""
    for row in rows:
        print("\t".join(" ".join(str(cell).split()) for cell in row))


def _print_table(table: Table) -> None:
    """A table is the command's result: on stdout, so ``yttl list | less`` and
    ``yttl search WORD > hits.txt`` get it; what is said about it goes to stderr."""
    from rich.console import Console

    Console().print(table)


def _search_plan(ns: argparse.Namespace, library: Library, mode: str | None) -> SearchPlan:
    """How to search: numpy and the provider stack are imported only when the library has
    vectors to search by meaning."""
    from yttl.embed.plan import plan_by_words

    plan = plan_by_words(mode, [] if mode == "words" else library.vector_models())
    if plan is not None:
        return plan
    import asyncio

    from yttl.embed.factory import embedder_holder
    from yttl.embed.indexing import query_vector

    holder = embedder_holder(_settings(ns))

    async def find() -> SearchPlan:
        try:
            return await query_vector(library, holder, " ".join(ns.query), mode)
        finally:
            await holder.aclose()

    return asyncio.run(find())


def _open(ns: argparse.Namespace) -> Library:
    return Library(library_path(_settings(ns)))


def _ask(ns: argparse.Namespace, stderr: Stderr) -> int:
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
        _note(f"dropped {count_of(len(answer.dropped), 'citation')} that match no part the answer "
              f"was given: {', '.join(answer.dropped)}")  # fmt: skip
    return 0


def _say_empty(library: Library) -> None:
    _note(f"the library at {library.path} is empty; summarize a video (yttl URL) or take "
          "in earlier runs (yttl library import DIR)")  # fmt: skip


def _search(ns: argparse.Namespace, stderr: Stderr) -> int:
    if ns.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {ns.limit}",
                         hint="see yttl search --help")  # fmt: skip
    if not " ".join(ns.query).strip():  # nothing to look for, by words or meaning
        raise UsageError("the query is empty", hint="give words to search for")
    library = _open(ns)
    if library.is_empty():  # nothing to search, by words or meaning: say only that
        _say_empty(library)
        if ns.json:
            print("[]")
        return 0
    plan = _search_plan(ns, library, ns.mode)
    _note(f"searched {plan.why}")
    hits = library.search(" ".join(ns.query), limit=ns.limit, video=ns.video, mode=plan.mode,
                          vector=plan.vector, model=plan.model)  # fmt: skip
    if ns.json:
        print(json.dumps([hit.as_dict() for hit in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no section matches", file=sys.stderr)
        return 0
    if not sys.stdout.isatty():
        _print_rows([hit.video_id, format_clock(hit.start), hit.url, hit.title, hit.snippet]
                    for hit in hits)  # fmt: skip
        return 0
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=True)
    for name in ("id", "video", "at", "snippet", "link"):
        table.add_column(name, overflow="fold", no_wrap=name == "id")
    for hit in hits:
        snippet = escape(hit.snippet)
        for mark in set(MARK):
            snippet = snippet.replace(escape(mark), "[bold yellow]", 1).replace(
                escape(mark), "[/bold yellow]", 1
            )  # fmt: skip
        title, at = escape(hit.title), format_clock(hit.start)
        table.add_row(escape(hit.video_id), title, at, snippet, escape(hit.url))
    _print_table(table)
    return 0


def _list(ns: argparse.Namespace, stderr: Stderr) -> int:
    library = _open(ns)
    videos = library.videos()
    if not videos:
        _say_empty(library)
    if ns.json:
        print(json.dumps(videos, indent=2, ensure_ascii=False))
        return 0
    if not videos:
        return 0
    if not sys.stdout.isatty():
        _print_rows([video["id"], video["title"], format_clock(video["duration"] or 0),
                     str(video["sections"]), video["model"] or "-"]
                    for video in videos)  # fmt: skip
        return 0
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=True)
    for name in ("id", "title", "length", "sections", "model"):
        table.add_column(name, overflow="fold")
    for video in videos:
        length = format_clock(video["duration"] or 0)
        table.add_row(escape(video["id"]), escape(video["title"]), length,
                      str(video["sections"]), escape(video["model"] or "-"))  # fmt: skip
    _print_table(table)
    return 0


def _show(ns: argparse.Namespace, stderr: Stderr) -> int:
    document = _open(ns).document(ns.id)
    if ns.format == "json":
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    from yttl.render.markdown import markdown_from_view

    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(markdown_from_view(document)))
    else:
        print(markdown_from_view(document), end="")
    return 0


def _embed(stderr: Stderr, library: Library, embedder: Embedder,
           among: Sequence[str] | None = None) -> int:  # fmt: skip
    """Embed what has no vectors of ``embedder``'s model (of ``among``, else the library),
    with a progress bar; how many videos."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from yttl.embed.indexing import reindex

    async def run() -> int:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        console = stderr()  # a bar only on a terminal: a log gets no blank line from it
        with Progress(
            *columns, console=console, transient=True, disable=not console.is_terminal
        ) as bar:
            task = bar.add_task(f"embedding with {embedder.name}", total=None)

            def step(done: int, total: int, video_id: str) -> None:
                bar.update(task, total=total, completed=done, description=f"embedded {video_id}")

            try:
                return await reindex(library, embedder, step, among)
            finally:
                await embedder.aclose()

    return asyncio.run(run())


def _embed_imported(ns: argparse.Namespace, stderr: Stderr, library: Library,
                    taken: Sequence[str]) -> int | None:  # fmt: skip
    """Embed the videos just taken in, with the library's model; when that cannot be,
    one line says why and they stay searchable by words (None)."""
    import asyncio

    from yttl.embed.indexing import EmbedderHolder
    from yttl.errors import YttlError

    settings = _settings(ns)
    if not settings.embed:
        _note("not embedded (embed is off): yttl library reindex embeds them when you want")
        return None
    holder = EmbedderHolder(settings)
    embedder = asyncio.run(holder.get(library.embed_model()))
    if embedder is None:
        _note(holder.why or "not embedded")
        return None
    try:
        return _embed(stderr, library, embedder, taken)
    except YttlError as exc:
        _note(f"not embedded, so search is by words only: {exc.message} (yttl library "
              "reindex tries again)")  # fmt: skip
        return None


def _reindex(ns: argparse.Namespace, stderr: Stderr) -> int:
    """Embed what has no vectors of the library's model; with another model named (flags,
    config or environment), switch the library to it, after saying how many videos and
    where their text goes, and asking (``--yes``)."""
    from yttl.embed.factory import build_embedder
    from yttl.embed.names import configured, for_library, named

    library = _open(ns)
    if library.is_empty():  # no model to load (or download) for nothing
        _say_empty(library)
        return 0
    settings = dataclasses.replace(_settings(ns), embed=True)  # reindex asks for it by name
    recorded = library.embed_model()
    if not named(settings):
        settings = for_library(settings, recorded).settings or settings
    target = configured(settings)
    if target is not None and recorded is not None and target.name == recorded.name:
        if not library.unembedded(target.name):
            library.drop_other_vectors(target.name)  # an interrupted switch's leftovers
            _note(f"nothing to embed: every video has vectors of {target.name}")
            return 0
    elif target is not None and recorded is not None:
        _confirm_switch(ns, library, recorded, target)
    embedder = build_embedder(settings)
    assert embedder is not None
    target = embedder.identity
    switching = recorded is not None and target.name != recorded.name
    if switching and configured(settings) is None:  # a hub pattern: known once found
        assert recorded is not None
        _confirm_switch(ns, library, recorded, target)
    if switching:
        library.set_embed_model(target)
    elif recorded is None:
        where = f"; their text goes to {target.host}" if target.host else ""
        _note(f"embedding {len(library.unembedded(target.name))} video(s) with "
              f"{target.name}{where}")  # fmt: skip
    try:
        count = _embed(stderr, library, embedder)
    except BaseException:
        if switching and recorded is not None and target.name not in library.vector_models():
            library.set_embed_model(recorded)  # nothing embedded: search keeps its vectors
            _note(
                f"the library's embedding model stays {recorded.name}: no video was "
                f"embedded with {target.name}"
            )
        raise
    library.drop_other_vectors(target.name)  # every video has the library's: none reads them
    _note(f"embedded {count} video(s) with {target.name}; the library at {library.path} "
          "searches by meaning")  # fmt: skip
    return 0


def _confirm_switch(ns: argparse.Namespace, library: Library, recorded: EmbedModel,
                    target: EmbedModel) -> None:  # fmt: skip
    """Say what switching the library's model does, and ask (``--yes``: do not ask; not
    on a terminal: refuse)."""
    count = len(library.unembedded(target.name))
    where = f"their text goes to {target.host}" if target.host else "on this machine"
    _note(f"this switches the library's embedding model from {recorded.name} to "
          f"{target.name}: {count} video(s) to embed, {where}")  # fmt: skip
    if ns.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "not switching the library's embedding model without a yes",
            hint="add --yes to switch, or run it on a terminal to be asked",
        )
    answer = input("yttl: switch? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("the library's embedding model is unchanged",
                         hint=f"it stays {recorded.name}")  # fmt: skip


def _import(ns: argparse.Namespace, stderr: Stderr) -> int:
    if ns.action == "reindex":
        return _reindex(ns, stderr)
    if ns.directory is None:
        raise UsageError("library import needs the folder earlier runs wrote to",
                         hint="see yttl library --help")  # fmt: skip
    library = _open(ns)
    taken, refused = library.import_outputs(Path(ns.directory))
    _note(f"took in {len(taken)} video(s) from {ns.directory}")
    for path, why in refused:
        print(f"  skipped {path}: {why}", file=sys.stderr)
    if taken and not ns.no_embed:
        count = _embed_imported(ns, stderr, library, taken)
        if count is not None:
            _note(f"embedded {count} video(s): search goes by meaning too")
    return 0


def _parser(make: Callable[..., argparse.ArgumentParser], command: str) -> argparse.ArgumentParser:
    parser = make(prog=f"yttl {command}", allow_abbrev=False)
    parser.add_argument("--library-path", metavar="PATH", help="the library's SQLite file")
    parser.add_argument("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    if command in ("search", "ask", "library"):
        parser.add_argument("--embed-provider", metavar="NAME",
                            help="local, openai or a profile (default: local)")  # fmt: skip
        parser.add_argument("--embed-model", metavar="NAME", help="the embedding model")
    if command == "search":
        parser.add_argument("query", nargs="+", metavar="QUERY")
        parser.add_argument("--json", action="store_true", help="hits as JSON")
        parser.add_argument(
            "--limit", type=int, default=10, metavar="N", help="at most N hits (default: 10)"
        )
        parser.add_argument("--video", metavar="ID", help="search one video only")
        parser.add_argument("--mode", choices=("words", "meaning", "hybrid"),
                            help="by words, by meaning, or both fused (default: hybrid when "
                            "the library has vectors)")  # fmt: skip
    elif command == "list":
        parser.add_argument("--json", action="store_true", help="the videos as JSON")
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
        parser.add_argument("-om", "--openai-model", help="model of the openai provider")
        parser.add_argument("-ou", "--openai-base-url", help="base URL of the openai provider")
    elif command == "show":
        parser.add_argument("id", metavar="ID")
        parser.add_argument(
            "-f",
            "--format",
            choices=("md", "json"),
            default="md",
            help="Markdown or the JSON document (default: md)",
        )
    else:
        parser.add_argument("action", choices=("import", "reindex"))
        parser.add_argument("--no-embed", action="store_true",
                            help="import: take the videos in without embedding them")  # fmt: skip
        parser.add_argument("--yes", action="store_true",
                            help="reindex: switch the library's embedding model without "
                            "asking")  # fmt: skip
        parser.add_argument("directory", metavar="DIR", nargs="?",
                            help="import: where earlier runs wrote JSON")  # fmt: skip
    return parser


def run_library_command(argv: Sequence[str], stderr: Stderr,
                        make: Callable[..., argparse.ArgumentParser]) -> int:  # fmt: skip
    """``argv`` starts with the command's name; ``make`` builds the CLI's parser class."""
    command, rest = argv[0], argv[1:]
    ns = _parser(make, command).parse_args(rest)
    handlers: dict[str, Callable[[argparse.Namespace, Stderr], int]] = {
        "search": _search, "list": _list, "show": _show, "library": _import, "ask": _ask,
    }  # fmt: skip
    result: Any = handlers[command](ns, stderr)
    return int(result)
