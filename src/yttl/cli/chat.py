"""``yttl chat ID... | --all``: a conversation with the library in the terminal.

Questions are read a line at a time from stdin; each answer is printed as the model
writes it, then its citations as links with their times. The thread is kept in the
library (``--thread ID`` takes it up again). Ctrl-D ends the conversation; Ctrl-C ends
it too, without a traceback, and an answer it cuts off is not kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from yttl.cli.arguments import CONFIG_HELP
from yttl.config import Settings, library_path, load_settings
from yttl.errors import UsageError, YttlError
from yttl.exitcodes import EXIT_INTERRUPTED, EXIT_OK
from yttl.render.links import format_clock

if TYPE_CHECKING:
    from yttl.chat import ChatReply
    from yttl.factory import RunComponents
    from yttl.library.chats import ChatStore, ChatThread

__all__ = ["chat_command"]


def _parser(make: Callable[..., argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = make(
        prog="yttl chat",
        allow_abbrev=False,
        usage="yttl chat ID [ID ...] | yttl chat --all | yttl chat --thread ID",
    )
    parser.add_argument("ids", nargs="*", metavar="ID", help="the videos to talk about")
    parser.add_argument("--all", action="store_true", help="talk about the whole library")
    parser.add_argument("--thread", metavar="ID", help="take up a kept thread again")
    parser.add_argument("--library-path", metavar="PATH", help="the library's SQLite file")
    parser.add_argument("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    parser.add_argument("-lp", "--llm-provider", help="the LLM to ask (default: configured)")
    parser.add_argument("-om", "--openai-model", help="model of the openai provider")
    parser.add_argument("-ou", "--openai-base-url", help="base URL of the openai provider")
    parser.add_argument(
        "--embed-provider",
        metavar="NAME",
        help="embedder of the questions (default: the library's)",
    )
    parser.add_argument("--embed-model", metavar="NAME", help="its model (default: the library's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")
    return parser


def _say(text: str) -> None:
    print(f"yttl: {text}", file=sys.stderr, flush=True)


def _thread(ns: argparse.Namespace, store: ChatStore) -> ChatThread:
    from yttl.chat import open_thread

    given = sum(bool(x) for x in (ns.ids, ns.all, ns.thread))
    if given != 1:
        raise UsageError(
            "give video IDs, --all, or --thread ID (one of them)", hint="see yttl chat --help"
        )
    if ns.thread:
        thread = store.get(ns.thread)
        if thread is None:
            raise UsageError(f"no chat thread {ns.thread!r} in the library")
        return thread
    return open_thread(store, None if ns.all else list(ns.ids))


def _print_reply(result: ChatReply, streamed: str) -> None:
    answer = result.answer
    if answer.text.strip() != streamed.strip():  # not in the videos: said in yttl's words
        print(("\n" if streamed else "") + answer.text, end="")
    print(flush=True)
    for citation in answer.citations:
        print(f"  {format_clock(citation.start)}  {citation.url}", flush=True)
    if answer.dropped:
        _say(
            f"dropped {len(answer.dropped)} citation(s) that match no part the answer was "
            f"given: {', '.join(answer.dropped)}"
        )


async def _ask(
    store: ChatStore, thread_id: str, question: str, settings: Settings, components: RunComponents
) -> None:
    from yttl.chat import reply

    thread = await asyncio.to_thread(store.get, thread_id)
    assert thread is not None
    written: list[str] = []

    def write(piece: str) -> None:
        written.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    def restart() -> None:
        written.clear()
        print(flush=True)
        _say("the answer broke off; asking again")

    result = await reply(
        store, thread, question, settings, components=components, on_text=write, on_restart=restart
    )
    _print_reply(result, "".join(written))


def chat_command(argv: Sequence[str], make: Callable[..., argparse.ArgumentParser]) -> int:
    from yttl.factory import build_components
    from yttl.library import Library
    from yttl.library.chats import ChatStore
    from yttl.messages import error_line

    ns = _parser(make).parse_args(list(argv))
    flags = {
        key: getattr(ns, key)
        for key in (
            "library_path",
            "llm_provider",
            "openai_model",
            "openai_base_url",
            "embed_provider",
            "embed_model",
        )
    }
    settings, _ = load_settings(flags, config_file=ns.config)
    store = ChatStore(Library(library_path(settings)))
    thread = _thread(ns, store)
    over = "the whole library" if thread.all_videos else ", ".join(thread.video_ids)
    interactive = sys.stdin.isatty()
    _say(
        f"chat {thread.id} about {over}; a question a line, Ctrl-D ends "
        f"(yttl chat --thread {thread.id} takes it up again)"
    )
    with asyncio.Runner() as runner:
        try:
            components = runner.run(asyncio.to_thread(build_components, settings))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        try:
            while True:
                if interactive:
                    print("> ", end="", file=sys.stderr, flush=True)
                line = sys.stdin.readline()
                if not line:  # Ctrl-D
                    break
                if not line.strip():
                    continue
                try:
                    runner.run(_ask(store, thread.id, line.strip(), settings, components))
                except YttlError as exc:  # said; the question may be asked again
                    print(flush=True)
                    _say(error_line(exc) + " (ask again to retry)")
        except KeyboardInterrupt:
            print(file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        finally:
            runner.run(components.aclose())
    return EXIT_OK
