from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LoopbackServer
from tests.support.videos import DATA

if not DATA.is_dir():  # pragma: no cover - a broken checkout, not a test outcome
    raise RuntimeError(f"test data not found at {DATA}; set YTTL_TEST_DATA")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or reuses (or fills) the user's results cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    for key in [k for k in os.environ if k.startswith("YTTL_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no user config, no YTTL_* settings and a dummy key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    for key in ("OPENAI_API_KEY", "GROQ_API_KEY", "HF_TOKEN"):
        env.pop(key, None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["OPENAI_API_KEY"] = "sk-loopback-test-key-0123456789"
    env["COLUMNS"] = "200"
    return env


def run_yttl(args: list[str], env: dict[str, str], cwd: Path | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "yttl", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
