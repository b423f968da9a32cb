"""Endpoints that fail the way they do in the field, on 127.0.0.1: an embeddings endpoint
that answers one status (a 5xx, a 429, a 400 for a text too long), a port that refuses
connections, a hub that hands out a file, a proxy that counts who came to it."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    """What a fake was asked: one entry a request."""

    requests: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)


def refused_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler], seen: Seen) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.seen = seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def failing_embeddings(status: int, message: str = "unavailable") -> Iterator[tuple[str, Seen]]:
    """An OpenAI-compatible base URL whose ``/embeddings`` always answers ``status``."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.requests.append(self.path)
            body = json.dumps({"error": {"message": message, "type": "error"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

    with _serve(Handler, seen) as url:
        yield f"{url}/v1", seen


@contextmanager
def hanging_embeddings() -> Iterator[tuple[str, Seen]]:
    """An OpenAI-compatible base URL whose ``/embeddings`` takes a request and never
    answers (until the server stops); ``seen.started`` is set by the first request."""
    seen = Seen()
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.requests.append(self.path)
            seen.started.set()
            done.wait()

    try:
        with _serve(Handler, seen) as url:
            yield f"{url}/v1", seen
    finally:
        done.set()


@contextmanager
def fake_hub(
    files: dict[str, bytes], revision: str, *, trickle: bool = False
) -> Iterator[tuple[str, Seen]]:
    """A hub endpoint (``HF_ENDPOINT``) serving ``files`` (``repo/file`` -> bytes) at
    ``revision``; ``trickle``: a download that never ends (a byte a second)."""
    import time

    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, body: bool) -> None:
            seen.requests.append(f"{self.command} {self.path}")
            path = self.path.split("?", 1)[0].lstrip("/")
            repo, _, rest = path.partition("/resolve/")
            name = rest.partition("/")[2]
            data = files.get(f"{repo}/{name}")
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = hashlib.sha256(data).hexdigest()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", revision)
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.end_headers()
            if not body:
                return
            if self.command == "GET":
                seen.started.set()
            if trickle:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1)
            else:
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

    with _serve(Handler, seen) as url:
        yield url, seen


@contextmanager
def counting_proxy() -> Iterator[tuple[str, Seen]]:
    """An HTTP proxy that counts the connections made to it and refuses every tunnel."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:
            seen.requests.append(f"CONNECT {self.path}")
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_CONNECT

    with _serve(Handler, seen) as url:
        yield url, seen
