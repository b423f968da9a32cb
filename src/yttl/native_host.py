"""The native messaging host (``python -m yttl.native_host``, started by the browser).

Messages are JSON objects, each after its length in 4 bytes of native byte order, on
stdin and stdout. ``{"command": "pair"}`` answers ``{"url", "token"}`` of a running
``yttl serve``, starting one first when none runs. Nothing but protocol goes to stdout,
and anything malformed gets ``{"error": ...}``, never a traceback.

The token goes out only for a server that has shown it holds it: the host sends a fresh
nonce to ``POST /api/v1/challenge`` and checks the answer, HMAC(token, port and nonce),
which does not reveal the token. A state file left behind by a server that is gone, its
pid since reused by another process, names a server that cannot answer it.
"""

from __future__ import annotations

import hmac
import json
import secrets
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

__all__ = ["MAX_MESSAGE", "Malformed", "main", "read_message", "write_message"]

START_SECONDS = 30.0
MAX_MESSAGE = 1 << 20  # what Chrome itself allows a message to the host


class Malformed(Exception):
    """A message that cannot be read. ``fatal``: the stream is out of step (a truncated
    or oversized message), so nothing after it can be read either."""

    def __init__(self, why: str, *, fatal: bool = False) -> None:
        super().__init__(why)
        self.fatal = fatal


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message; None at the end of input; ``Malformed`` for anything else."""
    header = stream.read(4)
    if not header:
        return None
    if len(header) < 4:
        raise Malformed("a truncated message header", fatal=True)
    (length,) = struct.unpack("=I", header)
    if length > MAX_MESSAGE:  # not read: it could be endless
        raise Malformed(f"a message of {length} bytes (at most {MAX_MESSAGE})", fatal=True)
    body = stream.read(length)
    if len(body) < length:
        raise Malformed(f"a truncated message ({len(body)} of {length} bytes)", fatal=True)
    try:
        message = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Malformed("the message is not UTF-8") from exc
    except ValueError as exc:
        raise Malformed("the message is not JSON") from exc
    except RecursionError as exc:  # [[[[...]]]] well within the size limit
        raise Malformed("the message is nested too deeply") from exc
    if not isinstance(message, dict):
        raise Malformed("the message must be a JSON object")
    return message


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    stream.write(struct.pack("=I", len(data)) + data)
    stream.flush()


def holds_token(url: str, token: str) -> bool:
    """Whether the server at ``url`` (a loopback address) proves it holds ``token``."""
    from yttl.serve.tokens import proof

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    try:
        port = parts.port or 80
    except ValueError:
        return False
    nonce = secrets.token_urlsafe(32)
    request = urllib.request.Request(
        url + "/api/v1/challenge",
        method="POST",
        data=json.dumps({"nonce": nonce}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            given = json.loads(answer.read(4096)).get("proof")
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return False
    return isinstance(given, str) and hmac.compare_digest(given, proof(token, nonce, port))


def _start_server(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "yttl", "serve", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def pair() -> dict[str, Any]:
    from yttl.config import config_path
    from yttl.serve.state_file import read_state, state_path
    from yttl.serve.tokens import load_token

    token = load_token(config_path().parent / "serve-token")
    state = read_state()
    if state is None or not holds_token(str(state["url"]), token):
        _start_server(state_path().with_name("serve.log"))
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            state = read_state()
            if state is not None and holds_token(str(state["url"]), token):
                break
            time.sleep(0.2)
        else:
            return {"error": f"yttl serve did not start; see {state_path().with_name('serve.log')}"}
    assert state is not None
    return {"url": state["url"], "token": token}


def answer(message: dict[str, Any]) -> dict[str, Any]:
    command = message.get("command")
    if command == "pair":
        return pair()
    if command == "ping":
        return {"ok": True}
    return {"error": f"unknown command {str(command)[:40]!r}"}


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the protocol
    while True:
        try:
            message = read_message(stdin)
        except Malformed as exc:
            write_message(stdout, {"error": f"yttl native host: {exc}"})
            if exc.fatal:
                return 1
            continue
        if message is None:
            return 0
        try:
            reply = answer(message)
        except Exception as exc:  # one line to the extension, never a traceback
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        write_message(stdout, reply)


if __name__ == "__main__":
    raise SystemExit(main())
