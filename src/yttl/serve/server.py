"""Running the app: the token, the address, the one login line, uvicorn."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import signal
import socket
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yttl.config import Settings, library_path
from yttl.errors import UsageError
from yttl.serve.security import Guard, allowed
from yttl.serve.state_file import clear_state, write_state
from yttl.serve.tokens import load_token

__all__ = ["ServeOptions", "login_url", "run_server"]


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    open: bool = False
    allow_remote: bool = False
    new_token: bool = False
    token_file: Path | None = None


def login_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/?token={token}"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: ``--port 0`` gets a free port we can print."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another yttl serve may be running; or give --port N (0 picks a free one)",
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run_server(settings: Settings, options: ServeOptions, say: Callable[[str], None]) -> None:
    """Serve until Ctrl-C. ``say`` prints a line for the user (the login URL first)."""
    import uvicorn

    from yttl.library import Library
    from yttl.serve.app import build_app

    remote = options.host.strip("[]") not in ("127.0.0.1", "localhost", "::1")
    if remote and not options.allow_remote:
        raise UsageError(
            f"--host {options.host} would let other machines in",
            hint="add --allow-remote if that is what you want",
        )
    token_file = options.token_file
    assert token_file is not None
    # bound first: a server already on the port keeps its token, so a --new-token that
    # cannot start must not rotate the file under it
    sock = _bind(options.host, options.port)
    try:
        token = load_token(token_file, rotate=options.new_token)
        hosts = allowed(settings.serve_allowed_hosts)
        if remote:
            hosts = (*hosts, options.host.strip("[]"))
        guard = Guard(token, hosts, allowed(settings.serve_allowed_origins), token_file=token_file)
        library = Library(library_path(settings))
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    app = build_app(settings, library, guard)
    url = login_url(options.host, port, token)
    if remote:
        say(
            f"yttl serve: WARNING: listening on {options.host}: any machine that can reach "
            "it gets the login page (the token still guards it)"
        )
    say(f"yttl serve: open {url}  (the library at {library.path}; Ctrl-C to stop)")
    if options.open:
        webbrowser.open(url)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # no proxy in front: X-Forwarded-For would reset the limits
    )
    server = uvicorn.Server(config)
    stopping = _stop_on_signals(server)
    write_state(url.split("/?token=")[0])  # for the extension's host and doctor
    atexit.register(clear_state)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        clear_state()
        for number, handler in stopping.items():
            signal.signal(number, handler)


def _stop_on_signals(server: Any) -> dict[int, Any]:
    """SIGTERM, SIGHUP and SIGINT all stop the server gracefully, so that its state file
    goes with it (uvicorn re-raises the signals it caught once it has stopped, which
    without a handler of ours would end the process before the file is removed)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(number: int, frame: object) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    wanted = [signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)]
    return {int(n): signal.signal(n, stop) for n in wanted if n is not None}
