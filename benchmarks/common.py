"""What the benchmarks share: the ``yttl`` command line against the loopback server."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.server import LoopbackServer


def yttl_command(server: LoopbackServer, source: Path, out: Path, *extra: str) -> list[str]:
    """``yttl SOURCE`` on the loopback provider, JSON out, nothing cached or opened."""
    return [sys.executable, "-m", "yttl", str(source), "-lp", "openai", "-ou",
            server.openai_base_url, "-o", str(out), "-f", "json", "--no-open", "--no-cache",
            "-q", *extra]  # fmt: skip
