"""The subcommands that are neither a run nor the library: ``yttl config``, ``yttl mcp``
and ``yttl serve``. Each parses its own words and hands over to the library."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from yttl.cli.arguments import (
    CONFIG_HELP,
    ArgumentParser,
    build_parser,
    flags_of,
    profile_names,
)
from yttl.config import Settings, load_settings
from yttl.errors import UsageError
from yttl.exitcodes import EXIT_OK
from yttl.messages import count_of

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["config_command", "extension_command", "mcp_command", "serve_command"]

Logging = Callable[["Console", Settings], None]


def mcp_command(argv: Sequence[str], console: Console, configure: Logging) -> int:
    """``yttl mcp``: stdout belongs to the protocol; every log goes to stderr."""
    parser = ArgumentParser(prog="yttl mcp", allow_abbrev=False)
    parser.add_argument("--library-path", metavar="PATH", help="the library's SQLite file")
    parser.add_argument("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    parser.add_argument("-lp", "--llm-provider", help="the LLM of ask and summarize")
    ns = parser.parse_args(argv)
    flags = {"library_path": ns.library_path, "llm_provider": ns.llm_provider,
             "quiet": True, "open": False}  # fmt: skip
    settings, _ = load_settings(flags, config_file=ns.config)
    configure(console, settings)
    try:
        from yttl.mcp_server import build_server
    except ImportError as exc:
        raise UsageError(
            "yttl mcp needs the MCP SDK", hint="pip install -e '.[mcp]' in yttl's checkout"
        ) from exc
    from yttl.config import library_path

    console.print(f"yttl mcp: serving the library at {library_path(settings)} over stdio; "
                  "stop it with Ctrl-C or by closing its input", highlight=False,
                  markup=False, soft_wrap=True)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        build_server(settings).run("stdio")
    return EXIT_OK


def serve_command(argv: Sequence[str], console: Console, configure: Logging) -> int:
    """``yttl serve``: run options given to it are the defaults of its jobs."""
    from yttl.config import config_path

    profiles = profile_names(argv)
    parser = build_parser(profiles)
    parser.prog, parser.usage = "yttl serve", "yttl serve [--port N] [--open] [OPTIONS]"
    parser.description = (
        "The library, search, questions and jobs in the browser, and the "
        "API of the browser extension. Run options are its jobs' defaults."
    )
    parser.epilog = None
    add = parser.add_argument_group("serve").add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    add("--port", type=int, metavar="N", help="port (default: 8765; 0 picks a free one)")
    add("--allow-remote", action="store_true", help="allow a --host other than loopback")
    add("--allow-host", action="append", metavar="NAME", default=[],
        help="another name the Host header may carry (a reverse proxy's); repeatable")  # fmt: skip
    add("--allow-origin", action="append", metavar="ORIGIN", default=[],
        help="a web origin that may call the API (CORS); repeatable")  # fmt: skip
    add("--new-token", action="store_true", help="make a new token (ends every session)")
    add("--print-token", action="store_true", help="print the token and exit")
    ns = parser.parse_intermixed_args(list(argv))
    if ns.sources:
        raise UsageError(f"yttl serve takes no SOURCE ({ns.sources[0]!r}); submit jobs in "
                         "the browser or with POST /api/v1/jobs")  # fmt: skip
    flags = flags_of(ns, profiles)
    for key in ("host", "port", "allow_remote", "allow_host", "allow_origin", "new_token",
                "print_token", "open"):  # fmt: skip
        flags.pop(key, None)
    if ns.allow_origin:
        flags["serve_allowed_origins"] = tuple(ns.allow_origin)
    if ns.allow_host:
        flags["serve_allowed_hosts"] = tuple(ns.allow_host)
    if ns.port is not None:
        flags["serve_port"] = ns.port
    flags.update(open=False, quiet=True)
    settings, origins = load_settings(flags, config_file=ns.config)
    configure(console, settings)
    token_file = config_path().parent / "serve-token"
    if ns.print_token:
        from yttl.serve.tokens import load_token

        print(load_token(token_file, rotate=ns.new_token))
        return EXIT_OK
    if origins.get("output_dir", "default") == "default":
        import platformdirs

        settings = dataclasses.replace(
            settings, output_dir=str(Path(platformdirs.user_data_dir("yttl")) / "outputs")
        )
    try:
        from yttl.serve import ServeOptions, run_server
    except ImportError as exc:
        raise UsageError("yttl serve needs its extra",
                         hint="pip install -e '.[serve]' in yttl's checkout") from exc  # fmt: skip
    options = ServeOptions(ns.host, settings.serve_port, bool(ns.open), ns.allow_remote,
                           ns.new_token, token_file)  # fmt: skip
    run_server(settings, options, lambda line: console.print(line, highlight=False, markup=False,
                                                             soft_wrap=True))  # fmt: skip
    return EXIT_OK


def config_command(argv: Sequence[str], console: Console) -> int:
    from yttl.config import config_path, toml_value
    from yttl.redaction import redacted

    parser = ArgumentParser(prog="yttl config", allow_abbrev=False)
    parser.add_argument("action", choices=("show", "path", "suggest"))
    parser.add_argument("--config", type=Path, metavar="PATH", help=CONFIG_HELP)
    parser.add_argument(
        "--duration",
        default="1h",
        help="suggest: the video's length, e.g. 2h, 90m, 1h30m (default: 1h)",
    )
    parser.add_argument("--provider", help="LLM provider to advise for (default: configured)")
    ns = parser.parse_args(argv)
    if ns.action == "path":
        print(ns.config or config_path())
        return EXIT_OK
    if ns.action == "suggest":
        return _suggest(ns, console)
    from yttl.redaction import is_secret_name
    from yttl.tuning import effective_defaults

    settings, origins = load_settings({}, config_file=ns.config)
    defaults = effective_defaults(settings)
    for name, value in vars(settings).items():
        if name == "profiles":
            continue
        if is_secret_name(name):  # whether it is set, never what it is
            state = f"set; {origins[name]}" if value else "not set"
            print(f"# {name} = ...  ({state}; prefer the environment variable)")
        elif value is None or value == {}:
            default = defaults.get(name)
            meaning = [f"default: {default}" if default else "not set"]
            if origins[name] != "default":  # set to nothing somewhere: say where
                meaning.append(origins[name])
            print(f"# {name} = ({'; '.join(meaning)})")
        else:
            print(f"{name} = {toml_value(redacted(name, value))}  # {origins[name]}")
    for profile in settings.profiles.values():
        print(f"\n[profiles.{profile.name}]  # {origins['profiles']}")
        for key, value in dataclasses.asdict(profile).items():
            if key != "name" and value is not None:
                print(f"{key} = {toml_value(redacted(key, value))}")
    return EXIT_OK


def _suggest(ns: argparse.Namespace, console: Console) -> int:
    from yttl.transcribe.chunking import probe_hardware
    from yttl.tuning import endpoint_name, parse_duration, suggest

    try:
        duration = parse_duration(ns.duration)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    settings, _ = load_settings({}, config_file=ns.config)
    provider = ns.provider or endpoint_name(settings)
    hardware = probe_hardware()
    gpu = f", {count_of(hardware.cuda_devices, 'CUDA device')}" if hardware.has_cuda else ", no GPU"
    print(
        f"# for this machine ({hardware.cores} cores, {hardware.total_mb} MB, "
        f"{hardware.available_mb} MB free{gpu}), a {ns.duration} video, provider {provider}"
    )
    for item in suggest(hardware, duration, provider):
        print(f"{item.key} = {json.dumps(item.value)}  # {item.reason}")
    return EXIT_OK


def extension_command(argv: Sequence[str], console: Console) -> int:
    """``yttl extension install [--browser B] | doctor``: pair the browser extension."""
    from yttl import extension

    parser = ArgumentParser(prog="yttl extension", allow_abbrev=False,
                            description="Pair the browser extension with yttl serve.")  # fmt: skip
    parser.add_argument("action", choices=("install", "doctor"))
    parser.add_argument("--browser", action="append", choices=(*extension.BROWSERS, "all"),
                        help="the browser(s) to register the host with (default: all)")  # fmt: skip
    parser.add_argument("--manifest-dir", type=Path, metavar="DIR",
                        help="write the host manifest here (a browser profile's own)")  # fmt: skip
    ns = parser.parse_args(list(argv))
    if ns.action == "doctor":
        checks = extension.doctor(ns.manifest_dir)
        for check in checks:
            mark = "ok " if check.ok else "MISSING"
            print(f"{mark:8}{check.what}" + ("" if check.ok else f"\n        -> {check.fix}"))
        host = checks[0].ok and any(c.ok for c in checks if "host manifest" in c.what)
        return EXIT_OK if host else 1  # the server may well start later, by the host
    browsers = list(extension.BROWSERS) if not ns.browser or "all" in ns.browser else ns.browser
    for path in extension.install(browsers, ns.manifest_dir):
        print(f"wrote {path}")
    folder = extension.extension_dir()
    print("next: load the extension" + (f" from {folder}" if folder else "") + ": Chrome or "
          "Chromium, chrome://extensions, Developer mode, Load unpacked; Firefox, "
          "about:debugging, This Firefox, Load Temporary Add-on (its manifest.json). It then "
          "finds yttl serve by itself, starting it when needed.")  # fmt: skip
    return EXIT_OK
