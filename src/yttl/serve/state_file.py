"""Where a running ``yttl serve`` says it is (its URL and process), for the native
messaging host and ``yttl extension doctor``."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["clear_state", "read_state", "state_path", "write_state"]


def state_path() -> Path:
    return Path(platformdirs.user_state_dir("yttl")) / "serve.json"


def write_state(url: str) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".serve.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(temporary, path)


def read_state() -> dict[str, Any] | None:
    """The running server's state, or None when there is none or its process is gone."""
    try:
        state: dict[str, Any] = json.loads(state_path().read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def clear_state() -> None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        if json.loads(state_path().read_text()).get("pid") == os.getpid():
            state_path().unlink()
