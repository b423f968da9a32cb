"""The native messaging host and the state file it reads (DESIGN §3 "The extension"):
malformed messages get ``{"error"}``, never a traceback; the token goes only to a server
that proves it holds it; a server stopped by any signal removes its state file."""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def _framed(message: bytes) -> bytes:
    return struct.pack("=I", len(message)) + message


def _host(data: bytes, env: dict[str, str], timeout: float = 60) -> tuple[list[Any], str, int]:
    """Run the host on ``data``: (its replies, its stderr, its exit code)."""
    done = subprocess.run(
        [sys.executable, "-m", "yttl.native_host"],
        input=data,
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    replies, out = [], done.stdout
    while len(out) >= 4:
        (length,) = struct.unpack("=I", out[:4])
        replies.append(json.loads(out[4 : 4 + length]))
        out = out[4 + length :]
    assert out == b""  # nothing but protocol on stdout
    return replies, done.stderr.decode(errors="replace"), done.returncode


@pytest.mark.parametrize(
    ("data", "fatal"),
    [
        (_framed(b"{not json"), False),
        (_framed(b"[1, 2]"), False),
        (_framed(b'"pair"'), False),
        (_framed(b'{"command": "\xff\xfe"}'), False),
        (struct.pack("=I", 100) + b'{"command": "ping"}', True),  # truncated
        (struct.pack("=I", 3 << 30) + b"{}", True),  # 3 GiB declared: not read
        (b"\x05\x00", True),  # a truncated header
        (_framed(b"[" * 100_000 + b"]" * 100_000), False),  # 200 kB, nested past recursion
        (_framed(b'{"a": ' * 50_000 + b"1" + b"}" * 50_000), False),
    ],
    ids=[
        "bad-json",
        "array",
        "string",
        "bad-utf8",
        "truncated",
        "3-gib",
        "short-header",
        "deep-array",
        "deep-object",
    ],
)
def test_a_malformed_message_gets_an_error_never_a_traceback(
    data: bytes, fatal: bool, clean_env: dict[str, str]
) -> None:
    ping = _framed(b'{"command": "ping"}')
    replies, stderr, _ = _host(data + ping, clean_env)
    assert "Traceback" not in stderr
    assert "error" in replies[0] and isinstance(replies[0]["error"], str)
    if not fatal:  # the stream is still in step: the next message is answered
        assert replies[1:] == [{"ok": True}]


def test_a_declared_length_over_a_mebibyte_is_not_read(clean_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "yttl.native_host"],
        env=clean_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(struct.pack("=I", (1 << 20) + 1))  # and the input never ends
        process.stdin.flush()
        readable, _, _ = select.select([process.stdout], [], [], 30)
        assert readable, "the host is reading a message it should have refused"
        (length,) = struct.unpack("=I", process.stdout.read(4))
        assert "error" in json.loads(process.stdout.read(length))
    finally:
        process.kill()
        process.wait(timeout=30)


@contextmanager
def _impostor(replies: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server on another port that answers what ``replies`` says: (its URL, the headers
    of every request it got)."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            seen.append(dict(self.headers))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(replies.get(self.path.split("?")[0], {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _stop(state: Path) -> None:
    """Stop the server the host started (never this process, which the stale file names)."""
    if state.is_file():
        pid = json.loads(state.read_text())["pid"]
        if pid != os.getpid():
            os.kill(pid, signal.SIGTERM)


def test_a_stale_state_file_with_a_reused_pid_never_gets_the_token(
    clean_env: dict[str, str],
) -> None:
    """``serve.json`` left behind names a port where something else now answers, and its
    pid is alive (this test's own): the host must not send or hand out the token there."""
    state = Path(clean_env["XDG_STATE_HOME"]) / "yttl" / "serve.json"
    token_file = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "serve-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("s" * 43 + "\n")
    token_file.chmod(0o600)
    replies = {"/api/v1/videos": [], "/api/v1/challenge": {"proof": "0" * 64}}
    with _impostor(replies) as (url, seen):
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        try:
            (answer,), stderr, code = _host(_framed(b'{"command": "pair"}'), clean_env)
            started = json.loads(state.read_text())["url"]  # the server the host started
        finally:
            _stop(state)
    assert "Traceback" not in stderr and code == 0
    assert answer == {"url": started, "token": "s" * 43} and started != url  # it proved it
    assert seen and all("s" * 43 not in json.dumps(headers) for headers in seen)


def test_a_server_stopped_by_any_signal_removes_its_state_file(clean_env: dict[str, str]) -> None:
    """SIGTERM, SIGHUP and SIGINT, one server each (started side by side)."""
    numbers = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]
    states, servers = [], []
    try:
        for number in numbers:
            env = {**clean_env, "XDG_STATE_HOME": f"{clean_env['XDG_STATE_HOME']}-{number}"}
            states.append(Path(env["XDG_STATE_HOME"]) / "yttl" / "serve.json")
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "yttl", "serve", "--port", "0"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for number, state, process in zip(numbers, states, servers, strict=True):
            assert process.stderr is not None
            assert "?token=" in process.stderr.readline()  # it is up
            for _ in range(300):
                if state.is_file() and json.loads(state.read_text())["pid"] == process.pid:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("yttl serve wrote no state file")
            process.send_signal(number)
        for process in servers:
            process.wait(timeout=30)
    finally:
        for process in servers:
            if process.poll() is None:
                process.kill()
    assert [state.exists() for state in states] == [False, False, False]
