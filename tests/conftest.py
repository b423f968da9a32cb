from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LoopbackServer
from tests.support.videos import DATA

CORPUS_HELPERS = {"serve_video", "two_hour_video", "video_ids", "load_info", "AUDIO", "YOUTUBE",
                  "DATA", "point_captions_at"}  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``../shared/data`` (a fresh clone on its own), tests built on the real
    corpus skip with one reason; the rest run."""
    if DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"the shared test corpus is not at {DATA} (YTTL_TEST_DATA)")
    for item in items:
        module = getattr(item, "module", None)
        uses = module is not None and bool(CORPUS_HELPERS & set(vars(module)))
        if uses or item.get_closest_marker("corpus"):
            item.add_marker(skip)


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
