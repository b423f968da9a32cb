"""A real HTTP server on 127.0.0.1 standing in for the remote services yttl talks to.

One server, several roles:
- ``POST /v1/chat/completions``: an OpenAI-compatible chat endpoint with configurable
  latency and fault injection; every call is recorded with its start and end, and the
  number of calls in flight is tracked. With ``"stream": true`` the reply comes as
  server-sent chunks in OpenAI's format, one word each, at a pace the test drives
  (``StreamGate``: a chunk goes out when the test lets it, counted, never timed), and can
  break off after any chunk (``stream_break``).
- ``GET /files/NAME``: static files (caption tracks).
- ``GET /api/skipSegments/PREFIX``: a SponsorBlock endpoint (hash-prefix form).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Fault = tuple[int, dict[str, str], bytes]
DROP: Fault = (0, {}, b"")  # close the connection without an answer


@dataclass
class ChatCall:
    index: int
    messages: list[dict[str, str]]
    model: str
    start: float
    end: float = 0.0
    status: int = 200
    reply: str = ""
    faulted: bool = False
    stream: bool = False
    chunks_sent: int = 0

    @property
    def system(self) -> str:
        return self.messages[0]["content"] if self.messages else ""

    @property
    def user(self) -> str:
        return self.messages[-1]["content"] if self.messages else ""


def default_reply(messages: list[dict[str, str]]) -> str:
    """Deterministic, traceable text: a digest of what was asked."""
    user = messages[-1]["content"] if messages else ""
    digest = hashlib.sha1(user.encode()).hexdigest()[:10]
    words = user.split()
    return f"Summary {digest} of {len(words)} words starting {' '.join(words[:6])!r}."


@dataclass
class LoopbackState:
    latency: float | Callable[[ChatCall], float] = 0.0
    fault: Callable[[ChatCall], Fault | None] | None = None
    reply: Callable[[list[dict[str, str]]], str] = default_reply
    api_key: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    sponsor_segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[ChatCall] = field(default_factory=list)
    transcribe: Callable[[bytes], dict[str, Any]] | None = None
    transcribe_fault: Callable[[ChatCall], Fault | None] | None = None
    transcription_calls: list[ChatCall] = field(default_factory=list)
    max_transcriptions_in_flight: int = 0
    transcriptions_in_flight: int = 0
    sponsor_requests: list[str] = field(default_factory=list)
    file_requests: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    rate_limit: tuple[int, float] | None = None  # (calls, seconds): N in any T, else 429
    rate_limited: int = 0
    accepted: list[float] = field(default_factory=list)
    stream_pace: Callable[[ChatCall, int], None] | None = None  # before chunk i; may block
    stream_break: Callable[[ChatCall, int], bool] | None = None  # True: cut before chunk i
    lock: threading.Lock = field(default_factory=threading.Lock)

    def over_limit(self, now: float) -> float | None:
        """Seconds until a call would be allowed, when the window is full (lock held)."""
        if self.rate_limit is None:
            return None
        calls, seconds = self.rate_limit
        recent = [t for t in self.accepted if t > now - seconds]
        self.accepted[:] = recent
        if len(recent) >= calls:
            return recent[0] + seconds - now
        recent.append(now)
        return None

    def successful_calls(self) -> list[ChatCall]:
        return [c for c in self.calls if c.status == 200 and not c.faulted and c.end]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            name = path[len("/files/") :]
            state.file_requests.append(name)
            if name in state.files:
                self._send(200, state.files[name], content_type="application/octet-stream")
            else:
                self._send(404, b'{"error": "not found"}')
        elif path.startswith("/api/skipSegments/"):
            prefix = path.rsplit("/", 1)[1]
            state.sponsor_requests.append(self.path)
            videos = [
                {"videoID": vid, "segments": segs}
                for vid, segs in state.sponsor_segments.items()
                if hashlib.sha256(vid.encode()).hexdigest().startswith(prefix)
            ]
            if videos:
                self._send(200, json.dumps(videos).encode())
            else:
                self._send(404, b"Not Found", content_type="text/plain")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.path.endswith("/audio/transcriptions"):
            self._transcription(raw)
            return
        body = json.loads(raw or b"{}")
        if not self.path.endswith("/chat/completions"):
            self._send(404, b'{"error": "not found"}')
            return
        if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
            self._send(401, json.dumps({"error": {"message": "Invalid API key"}}).encode())
            return
        with state.lock:
            call = ChatCall(
                len(state.calls),
                body.get("messages", []),
                body.get("model", ""),
                time.perf_counter(),
            )
            state.calls.append(call)
            wait = state.over_limit(time.monotonic())
            if wait is None:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
        if wait is not None:
            with state.lock:
                state.rate_limited += 1
            call.status, call.faulted, call.end = 429, True, time.perf_counter()
            self._send(
                429,
                b'{"error": {"message": "rate limit", "code": "rate_limit_exceeded"}}',
                {"Retry-After": f"{wait:.2f}"},
            )
            return
        try:
            latency = state.latency(call) if callable(state.latency) else state.latency
            if latency:
                time.sleep(latency)
            fault = state.fault(call) if state.fault else None
            if fault is not None:
                call.status, call.faulted = fault[0], True
                if fault is DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(fault[0], fault[2], fault[1])
                return
            call.reply = state.reply(call.messages)
            if body.get("stream"):
                call.stream = True
                self._stream_reply(call, state)
                return
            answer = {
                "id": f"chatcmpl-{call.index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": call.reply},
                    }
                ],
                "usage": {
                    "prompt_tokens": len(json.dumps(call.messages)) // 4,
                    "completion_tokens": len(call.reply) // 4,
                    "total_tokens": 0,
                },
            }
            self._send(200, json.dumps(answer).encode())
        finally:
            with state.lock:
                state.in_flight -= 1
                call.end = time.perf_counter()


def _pieces(text: str) -> list[str]:
    """One chunk a word, each with the space before it, as models stream."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])] if text else []


def _stream_reply(self: _Handler, call: ChatCall, state: LoopbackState) -> None:
    """The reply as OpenAI streams it: ``data: {chunk}`` events, chunked, then ``[DONE]``."""
    self.send_response(200)
    self.send_header("Content-Type", "text/event-stream")
    self.send_header("Transfer-Encoding", "chunked")
    self.end_headers()

    def event(delta: dict[str, str], finish: str | None = None) -> None:
        chunk = {
            "id": f"chatcmpl-{call.index}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        data = f"data: {json.dumps(chunk)}\n\n".encode()
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    event({"role": "assistant", "content": ""})
    for index, piece in enumerate(_pieces(call.reply)):
        if state.stream_pace is not None:
            state.stream_pace(call, index)
        if state.stream_break is not None and state.stream_break(call, index):
            call.faulted = True
            self.close_connection = True
            self.connection.shutdown(2)
            return
        event({"content": piece})
        call.chunks_sent += 1
    event({}, "stop")
    done = b"data: [DONE]\n\n"
    self.wfile.write(f"{len(done):X}\r\n".encode() + done + b"\r\n0\r\n\r\n")
    self.wfile.flush()


class StreamGate:
    """The pace of streamed replies, driven by the test: ``free`` chunks go at once, then
    each waits for ``release``. ``sent`` counts the chunks let through, ``asked`` those
    that were ready (one more than ``sent`` while a chunk waits)."""

    def __init__(self, free: int = 0) -> None:
        self._free = free
        self._permits = threading.Semaphore(0)
        self.sent = 0
        self.asked = 0

    def __call__(self, call: ChatCall, index: int) -> None:
        self.asked += 1  # a chunk is ready to go (and may be waiting)
        if self.sent >= self._free:
            self._permits.acquire(timeout=120)
        self.sent += 1

    def release(self, chunks: int = 1) -> None:
        for _ in range(chunks):
            self._permits.release()

    def open(self) -> None:
        """Let everything through from now on."""
        self._free = 10**9
        self.release(10**4)


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return {
        str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


def _transcription(self: _Handler, raw: bytes) -> None:
    state = self.server.state
    fields = _multipart(self.headers["Content-Type"], raw)
    with state.lock:
        call = ChatCall(
            len(state.transcription_calls), [], fields["model"].decode(), time.perf_counter()
        )
        state.transcription_calls.append(call)
        state.transcriptions_in_flight += 1
        state.max_transcriptions_in_flight = max(
            state.max_transcriptions_in_flight, state.transcriptions_in_flight
        )
    try:
        fault = state.transcribe_fault(call) if state.transcribe_fault else None
        if fault is not None:
            call.status, call.faulted = fault[0], True
            self._send(fault[0], fault[2], fault[1])
            return
        if fields.get("response_format") != b"verbose_json" or state.transcribe is None:
            self._send(400, b'{"error": {"message": "verbose_json only"}}')
            return
        self._send(200, json.dumps(state.transcribe(fields["file"])).encode())
    finally:
        with state.lock:
            state.transcriptions_in_flight -= 1
            call.end = time.perf_counter()


_Handler._transcription = _transcription  # type: ignore[attr-defined]
_Handler._stream_reply = _stream_reply  # type: ignore[attr-defined]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, state: LoopbackState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (what the fault tests make happen) is not an
        error to print into the test run's progress line."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Start with ``with LoopbackServer() as server:``; ``server.url`` is the base."""

    def __init__(self, state: LoopbackState | None = None) -> None:
        self.state = state or LoopbackState()
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
