from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from tests.support.server import LoopbackServer
from tests.support.videos import DATA, corpus_present


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``../shared/data`` (a fresh clone on its own), the tests marked ``corpus``
    (those that read it) skip with one reason; every other test runs, whatever its module
    imports (tests/test_suite_rules.py checks that the marks are where they belong)."""
    if corpus_present():
        return
    skip = pytest.mark.skip(reason=f"the shared test corpus is not at {DATA} (YTTL_TEST_DATA)")
    for item in items:
        if item.get_closest_marker("corpus"):
            item.add_marker(skip)


USER_DIRS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
REAL_USER_DIRS = tuple(
    Path(where("yttl"))
    for where in (platformdirs.user_cache_dir, platformdirs.user_config_dir,
                  platformdirs.user_data_dir, platformdirs.user_state_dir)
)  # fmt: skip
"""yttl's folders in the real user's home, as the environment pytest started in names them."""


def _snapshot(folders: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    found = {}
    for folder in folders:
        for path in folder.rglob("*") if folder.is_dir() else ():
            with contextlib.suppress(OSError):
                stat = path.stat()
                found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


@pytest.fixture(scope="session", autouse=True)
def _real_user_dirs_untouched() -> Iterator[None]:
    """The suite must leave the user's own library, cache and config as they were: a test
    that wrote there fails the run here."""
    before = _snapshot(REAL_USER_DIRS)
    yield
    after = _snapshot(REAL_USER_DIRS)
    changed = sorted(set(after) ^ set(before) | {k for k in after if after[k] != before.get(k)})
    assert not changed, f"the tests wrote into the user's own folders: {changed[:5]}"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or library, or reuses (or fills) the user's
    results cache: every user folder is the test's own."""
    for name in USER_DIRS:
        monkeypatch.setenv(name, str(tmp_path / f"user-{name[4:-5].lower()}"))
    for key in [k for k in os.environ if k.startswith("YTTL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("YTTL_EMBED", "false")  # no model download; embedding tests turn it on


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
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["OPENAI_API_KEY"] = "sk-loopback-test-key-0123456789"
    env["COLUMNS"] = "200"
    env["YTTL_EMBED"] = "false"  # no model download; the embedding tests turn it on
    return env


def run_yttl(args: list[str], env: dict[str, str], cwd: Path | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "yttl", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
