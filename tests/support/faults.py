"""Deterministic transient faults for the loopback chat server."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter

from tests.support.server import DROP, ChatCall, Fault


def stable_hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


class Faults:
    """Deterministic transient faults: a chosen share of prompts fail their first tries,
    each with a different kind of fault, then succeed."""

    KINDS = ("429", "500", "503", "drop", "stall", "html")

    def __init__(self, share: float, failures_per_prompt: int = 1) -> None:
        self.share = share
        self.failures_per_prompt = failures_per_prompt
        self.seen: Counter[str] = Counter()

    def __call__(self, call: ChatCall) -> tuple[int, dict[str, str], bytes] | None:
        key = call.user
        self.seen[key] += 1
        if stable_hash(key) % 100 >= self.share * 100 or self.seen[key] > self.failures_per_prompt:
            return None
        kind = self.KINDS[stable_hash(key + str(self.seen[key])) % len(self.KINDS)]
        if kind == "429":
            return (429, {"Retry-After": "0.1"}, b'{"error": {"message": "slow down"}}')
        if kind == "drop":
            return DROP
        if kind == "stall":
            time.sleep(2.5)  # past the 2 s request timeout; the client has gone
            return DROP
        if kind == "html":
            return (200, {"Content-Type": "text/html"}, b"<html>gateway hiccup</html>")
        return (int(kind), {}, b'{"error": {"message": "server trouble"}}')


SERVER_TROUBLE = (
    500,
    {"Content-Type": "application/json"},
    b'{"error": {"message": "server trouble"}}',
)
LOADING = (
    503,
    {"Content-Type": "application/json"},
    json.dumps(
        {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    ).encode(),
)
"""What llama.cpp's server answers to every request while it loads its model."""


class FastFaults:
    """Scattered faults that answer at once while successes take ``latency`` (issue 29).

    With ``failures``, the prompts whose hash falls in ``share`` fail their first
    ``failures`` tries; without, every request fails with a chance of ``share`` (by the
    hash of ``seed``, the prompt and its try). With ``slots`` (the client's calls in
    flight), the first successes wait until that many wait together, so that every fast
    failure that can come before the first success has come: counted, not timed. Use
    ``latency`` and ``fault`` as the server's hooks.
    """

    def __init__(
        self,
        share: float,
        *,
        failures: int | None = None,
        seed: int = 0,
        slots: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.share, self.failures, self.seed = share, failures, seed
        self.slots, self.delay = slots, latency
        self.seen: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()  # prompt -> fast failures answered
        self._failing: set[int] = set()
        self._waiting = 0
        self._lock = threading.Lock()
        self._release = threading.Event()

    def _fails(self, key: str, tries: int) -> bool:
        if self.failures is not None:
            return stable_hash(key) % 100 < self.share * 100 and tries <= self.failures
        return stable_hash(f"{self.seed}:{key}:{tries}") % 10_000 < self.share * 10_000

    def latency(self, call: ChatCall) -> float:
        with self._lock:
            self.seen[call.user] += 1
            if self._fails(call.user, self.seen[call.user]):
                self._failing.add(call.index)
                self.failed[call.user] += 1
                return 0.0
            self._waiting += 1
            if self._waiting >= self.slots:
                self._release.set()
        self._release.wait(timeout=30)  # liveness only: no verdict rests on it
        return self.delay

    def fault(self, call: ChatCall) -> Fault | None:
        return SERVER_TROUBLE if call.index in self._failing else None


class Loading:
    """llama.cpp's server loading its model: 503 "Loading model" to its first ``calls``
    requests (counted), or for ``seconds`` from its first request; then it answers after
    ``latency``. ``ready_at`` is when it first answered well (``time.monotonic``)."""

    def __init__(
        self, *, calls: int | None = None, seconds: float | None = None, latency: float = 0.0
    ) -> None:
        self.calls, self.seconds, self.delay = calls, seconds, latency
        self.started: float | None = None
        self.ready_at: float | None = None
        self.loading_answers = 0
        self._loading: set[int] = set()
        self._lock = threading.Lock()

    def latency(self, call: ChatCall) -> float:
        now = time.monotonic()
        with self._lock:
            self.started = self.started or now
            if self.calls is not None:
                loading = call.index < self.calls
            else:
                loading = now - self.started < (self.seconds or 0.0)
            if loading:
                self._loading.add(call.index)
                self.loading_answers += 1
                return 0.0
            self.ready_at = self.ready_at or now
        return self.delay

    def fault(self, call: ChatCall) -> Fault | None:
        return LOADING if call.index in self._loading else None
