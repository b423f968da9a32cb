"""The command line's words: the main parser (options grouped, each with its help and
its built-in default), and how parsed options become settings flags."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yttl._version import __version__
from yttl.config import FORMATS, Profile, Settings, parse_assignment
from yttl.errors import UsageError

__all__ = [
    "COMMANDS_HELP",
    "CONFIG_HELP",
    "ArgumentParser",
    "attach_item_specs",
    "build_parser",
    "flags_of",
    "profile_names",
]

COMMANDS_HELP = """commands (each has its own --help):
  yttl search QUERY            find the moments that discuss something
  yttl list                    the videos in the library
  yttl show ID                 one video's summary (-f md|json)
  yttl ask ID QUESTION         an answer from a video, with linked citations
  yttl chat ID... | --all      a conversation: answers stream, follow-ups understood
  yttl library import DIR      take in the JSON outputs of earlier runs
  yttl config show|path|suggest  settings, where they come from, advice for this machine
  yttl mcp                     the library as MCP tools on stdio (for AI assistants)
  yttl serve [--port N] [--open]  the library, search, questions and jobs in the browser
  yttl extension install|doctor  pair the browser extension with yttl serve
"""


CONFIG_HELP = "config file (TOML; default: yttl config path)"


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit 2 with usage; keep one line
        raise UsageError(message, hint="see yttl --help")


def profile_names(argv: Sequence[str]) -> list[str]:
    names = []
    for i, arg in enumerate(argv):
        if arg in ("-aop", "--add-openai-profile") and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif arg.startswith("--add-openai-profile="):
            names.append(arg.split("=", 1)[1])
    return names


_ITEMS_FROM_THE_END = re.compile(r"^-[\d][\d:,\-]*$")


def attach_item_specs(argv: Sequence[str]) -> list[str]:
    """``--playlist-items -2:`` as ``--playlist-items=-2:``: argparse would take a value
    that starts with a dash for an option of its own."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--playlist-items" and _ITEMS_FROM_THE_END.match(arg):
            out[-1] = f"--playlist-items={arg}"
        else:
            out.append(arg)
    return out


def build_parser(profiles: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="yttl",
        usage="yttl [OPTIONS] SOURCE... | yttl COMMAND ...",
        description="Summarize a video (URL, media file or yt-dlp info.json), hour by hour "
        "and 5 minutes at a time, with links to each moment. Several sources, a playlist "
        "or a batch file run as one batch under the provider's limits.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="URL (a video, playlist or channel), media file, or *.info.json "
        "(a video's or a playlist's)",
    )
    p.add_argument("--version", action="version", version=f"yttl {__version__}")

    add = p.add_argument_group("input").add_argument
    add(
        "-a",
        "--batch-file",
        action="append",
        metavar="FILE",
        help="sources from FILE, one a line (# comments; - for standard input)",
    )
    add(
        "--playlist-items",
        metavar="SPEC",
        help="entries of a playlist, e.g. 1-3,7 or -2: (the last two)",
    )
    add("--max-videos", type=int, metavar="N", help="at most N entries of a playlist")
    add("--dateafter", metavar="DATE", help="only entries uploaded on or after DATE")
    add("--language", help="preferred caption language (default en)")
    add("--cookies", metavar="FILE", help="cookies file for yt-dlp")
    add("--cookies-from-browser", metavar="BROWSER", help="let yt-dlp read a browser's cookies")
    add(
        "--yt-dlp-option",
        action="append",
        metavar="KEY=VALUE",
        default=None,
        help="pass an option to yt-dlp (VALUE as JSON when it parses); repeatable",
    )
    add(
        "-sb",
        "--sponsorblock",
        action="append",
        metavar="CAT",
        help="drop SponsorBlock segments of this category; repeatable",
    )
    add("--sponsorblock-api", metavar="URL", help="SponsorBlock API base URL")

    add = p.add_argument_group("summarization").add_argument
    add("-lp", "--llm-provider", help="local, openai, groq, chatgpt, huggingchat or a profile")
    add("-om", "--openai-model", help="model of the openai provider (only)")
    add("-ou", "--openai-base-url", help="base URL of the openai provider (only)")
    add(
        "-aop",
        "--add-openai-profile",
        action="append",
        metavar="NAME",
        help="another OpenAI-compatible endpoint; adds --NAME-model, --NAME-base-url, "
        "--NAME-whisper-model; key from NAME_API_KEY",
    )
    for name in profiles:
        add(f"--{name}-model", dest=f"profile__{name}__model")
        add(f"--{name}-base-url", dest=f"profile__{name}__base_url")
        add(f"--{name}-whisper-model", dest=f"profile__{name}__whisper_model")
    add("-lmr", "--local-model-repo", help="hub repository of the local GGUF model")
    add("-lmf", "--local-model-file", help="GGUF file name in that repository")
    add("--local-model-path", help="a GGUF file on disk")
    add("--local-llm-instances", type=int, help="model instances of the local provider")
    add("--local-llm-threads", type=int, help="threads per local model instance")
    add("--context-tokens", type=int, help="largest request to send to the model, in tokens")
    add(
        "--sections",
        choices=("fixed", "chapters"),
        help="5-minute sections, or the video's chapters when it has them",
    )
    add(
        "--summary-language",
        metavar="LANG",
        help="language of every summary: a name or a code (default: the transcript's)",
    )
    add(
        "--no-overview",
        dest="overview",
        action="store_false",
        default=None,
        help="no overview of videos longer than an hour (one call fewer)",
    )
    add("--transcript-only", action="store_true", default=None, help="write the transcript only")
    add(
        "--slides",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="find the video's slides, read their text (OCR) and show them with their sections",
    )

    add = p.add_argument_group("transcription").add_argument
    add("-wp", "--whisper-provider", help="local, openai, or a profile")
    add("-lwm", "--local-whisper-model", help="faster-whisper model name or directory")
    add("-owm", "--openai-whisper-model", help="model for API transcription")
    add("--force-local-transcribe", action="store_true", default=None, help="ignore caption tracks")
    add(
        "--chunk-strategy",
        choices=("adaptive", "fixed", "memory_optimized"),
        help="how audio is cut for whisper",
    )
    add("--chunk-seconds", type=float, metavar="S", help="audio chunk length (default: hardware)")
    add("--beam-size", type=int, metavar="N", help="whisper beam (default: 4 on CPU, 5 on GPU)")
    add(
        "--vad",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="skip silence with Silero VAD",
    )
    add("--silence-threshold-db", type=float, metavar="DB", help="quieter than this is silence")
    add(
        "--min-silence-seconds",
        type=float,
        metavar="S",
        help="the shortest pause that counts as silence",
    )

    add = p.add_argument_group("resilience").add_argument
    add(
        "--fallback-provider",
        metavar="NAME",
        help="provider to try when a call still fails after its retries",
    )
    add("--retry-max-attempts", type=int, metavar="N", help="tries of a failing call")
    add(
        "--retry-base-delay",
        type=float,
        metavar="S",
        help="first back-off between tries, doubling after each",
    )
    add(
        "--request-timeout",
        type=float,
        metavar="S",
        help="per attempt, counted from sending (never while a call waits its turn)",
    )
    add(
        "--breaker-deadline",
        type=float,
        metavar="S",
        help="how long calls wait for a failing endpoint to come back (default 60)",
    )
    add(
        "--no-cache",
        dest="cache",
        action="store_false",
        default=None,
        help="neither reuse nor keep results (a rerun redoes everything)",
    )
    add("--cache-dir", metavar="DIR", help="results cache and models (default: user cache dir)")
    add(
        "--no-library",
        dest="library",
        action="store_false",
        default=None,
        help="do not record this run in the searchable library",
    )
    add("--library-path", metavar="PATH", help="the library's SQLite file")
    add(
        "--embed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embed each video for search by meaning, after its outputs are written",
    )
    add(
        "--embed-provider",
        metavar="NAME",
        help="local (a GGUF model in-process), openai or a profile",
    )
    add(
        "--embed-model",
        metavar="NAME",
        help="the embedding model (local: a GGUF path or REPO[:FILE-PATTERN])",
    )

    add = p.add_argument_group("performance and batches").add_argument
    add("--max-concurrent-llm", type=int, metavar="N", help="LLM calls in flight, whole run")
    add(
        "--requests-per-minute",
        type=float,
        metavar="N",
        help="pace LLM calls to this budget (default: provider preset)",
    )
    add(
        "--tokens-per-minute",
        type=float,
        metavar="N",
        help="pace LLM tokens to this budget (default: provider preset)",
    )
    add(
        "--sequential",
        action="store_true",
        default=None,
        help="one LLM call at a time, in order (the original behaviour)",
    )
    add(
        "--max-concurrent-videos",
        type=int,
        metavar="N",
        help="videos resolved, downloaded and transcribed at once (default: hardware)",
    )
    add(
        "--max-concurrent-whisper",
        type=int,
        metavar="N",
        help="transcription workers or uploads (default: hardware)",
    )
    add(
        "--memory-limit-mb",
        type=int,
        metavar="MB",
        help="budget for audio buffers and local models (default: hardware)",
    )
    add("--executor", choices=("local", "ray"), help="where a batch runs (default local)")
    add("--ray-address", metavar="ADDR", help="Ray cluster (auto, ray://host:port)")
    add("--ray-whisper-gpus", type=float, metavar="N", help="GPUs for the Whisper actor")

    add = p.add_argument_group("output").add_argument
    add("-o", "--output-dir", help="where outputs go (DIR/<video_id>.<ext>; default ./out)")
    add("-f", "--format", action="append", choices=FORMATS, help="repeatable; default html")
    add(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open the HTML when done (default: only on a terminal)",
    )
    add("--report", action="store_true", default=None, help="performance table on stderr")
    add("--report-json", metavar="PATH", help="write the performance report as JSON")
    add(
        "-v",
        "--verbose",
        action="store_true",
        default=None,
        help="debug logs, and a traceback with an error",
    )
    add("-q", "--quiet", action="store_true", default=None, help="errors only")
    add("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    _show_defaults(p)
    return p


def default_words(action: argparse.Action, value: Any) -> str | None:
    """An option's built-in default as a person reads it: ``on by default`` for a switch
    (never ``True``, which beside ``--no-cache`` reads as the opposite), the value
    otherwise; None when there is nothing to say."""
    if value in (None, (), ""):
        return None
    if isinstance(value, bool):
        switch = isinstance(action, argparse.BooleanOptionalAction)
        negative = isinstance(action, argparse._StoreFalseAction)  # --no-X
        if negative:
            name = action.dest.replace("_", " ")
            return f"{name} is on by default; this turns it off" if value else None
        if not switch:
            return None  # a plain flag that is off unless given: nothing to add
        return "on by default" if value else "off by default"
    shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"default: {shown}"


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Each option's help ends with its built-in default (``Settings``), unless it says."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for action in parser._actions:
        words = default_words(action, defaults.get(action.dest))
        if action.help and "default" not in action.help and words is not None:
            action.help += f" ({words})"


def flags_of(ns: argparse.Namespace, profiles: Sequence[str]) -> dict[str, Any]:
    values = {k: v for k, v in vars(ns).items() if not k.startswith("profile__")}
    for key in ("sources", "config", "add_openai_profile", "batch_file"):
        values.pop(key, None)
    if values.get("yt_dlp_option") is not None:
        try:
            values["yt_dlp_options"] = dict(parse_assignment(o) for o in values["yt_dlp_option"])
        except ValueError as exc:
            raise UsageError(f"--yt-dlp-option: {exc}") from exc
    values.pop("yt_dlp_option", None)
    for key in ("format", "sponsorblock"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    if profiles:
        values["profiles"] = {
            name: Profile(
                name,
                base_url=getattr(ns, f"profile__{name}__base_url"),
                model=getattr(ns, f"profile__{name}__model"),
                whisper_model=getattr(ns, f"profile__{name}__whisper_model"),
            )
            for name in profiles
        }
    return values
