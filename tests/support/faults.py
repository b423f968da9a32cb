"""Deterministic transient faults for the loopback chat server."""

from __future__ import annotations

import hashlib
import time
from collections import Counter

from tests.support.server import DROP, ChatCall


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
