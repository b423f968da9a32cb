"""The native messaging host (``python -m yttl.native_host``, started by the browser).

Messages are JSON, each after its length in 4 bytes of native byte order, on stdin and
stdout. ``{"command": "pair"}`` answers ``{"url", "token"}`` of a running ``yttl serve``,
starting one first when none runs. Nothing but protocol goes to stdout.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["main", "read_message", "write_message"]

START_SECONDS = 30.0


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (length,) = struct.unpack("=I", header)
    message: dict[str, Any] = json.loads(stream.read(length).decode("utf-8"))
    return message


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    stream.write(struct.pack("=I", len(data)) + data)
    stream.flush()


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(url + "/api/v1/videos",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_server(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.Popen([sys.executable, "-m", "yttl", "serve", "--port", "0"],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                         start_new_session=True)  # fmt: skip


def pair() -> dict[str, Any]:
    from yttl.config import config_path
    from yttl.serve.state_file import read_state, state_path
    from yttl.serve.tokens import load_token

    token = load_token(config_path().parent / "serve-token")
    state = read_state()
    if state is None or not _answers(str(state["url"]), token):
        _start_server(state_path().with_name("serve.log"))
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            state = read_state()
            if state is not None and _answers(str(state["url"]), token):
                break
            time.sleep(0.2)
        else:
            return {"error": f"yttl serve did not start; see {state_path().with_name('serve.log')}"}
    assert state is not None
    return {"url": state["url"], "token": token}


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the protocol
    while True:
        message = read_message(stdin)
        if message is None:
            return 0
        command = message.get("command")
        try:
            answer = pair() if command == "pair" else {"ok": True} if command == "ping" else \
                {"error": f"unknown command {command!r}"}  # fmt: skip
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        write_message(stdout, answer)


if __name__ == "__main__":
    raise SystemExit(main())
