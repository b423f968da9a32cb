"""The browser extension's side on this machine: the native messaging host that
``yttl extension install`` registers (pinned to the extension's id, under a file name
that matches the host's name, where each browser and OS looks for it), and ``doctor``,
which says what is missing."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

__all__ = [
    "BROWSERS",
    "CHROME_EXTENSION_ID",
    "FIREFOX_EXTENSION_ID",
    "HOST_NAME",
    "Check",
    "doctor",
    "extension_dir",
    "install",
    "manifest_dirs",
]

HOST_NAME = "org.yttl.serve"
CHROME_EXTENSION_ID = (
    "gmgkpccceagbccmmmhpnefdgfooldlae"  # from the "key" in extension/manifest.json
)
FIREFOX_EXTENSION_ID = "yttl@yttl.dev"  # browser_specific_settings.gecko.id
BROWSERS = ("chrome", "chromium", "firefox")


def manifest_dirs(browser: str, platform: str = sys.platform,
                  home: Path | None = None) -> list[Path]:  # fmt: skip
    """Where ``browser`` reads native messaging host manifests for this user."""
    home = home or Path.home()
    if platform == "darwin":
        support = home / "Library" / "Application Support"
        return {"chrome": [support / "Google" / "Chrome" / "NativeMessagingHosts"],
                "chromium": [support / "Chromium" / "NativeMessagingHosts"],
                "firefox": [support / "Mozilla" / "NativeMessagingHosts"]}[browser]  # fmt: skip
    if platform.startswith("win"):  # the manifest anywhere, a registry key points at it
        return [Path(platformdirs.user_data_dir("yttl")) / "native-messaging" / browser]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return {"chrome": [config / "google-chrome" / "NativeMessagingHosts"],
            "chromium": [config / "chromium" / "NativeMessagingHosts"],
            "firefox": [home / ".mozilla" / "native-messaging-hosts"]}[browser]  # fmt: skip


def launcher_path() -> Path:
    name = "yttl-native-host.bat" if sys.platform.startswith("win") else "yttl-native-host"
    return Path(platformdirs.user_data_dir("yttl")) / name


def _write_launcher() -> Path:
    """A small script the browser starts: this Python, this yttl, the host module."""
    path = launcher_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if sys.platform.startswith("win"):
        path.write_text(f'@echo off\r\n"{sys.executable}" -m yttl.native_host %*\r\n')
    else:
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m yttl.native_host "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def host_manifest(browser: str, launcher: Path) -> dict[str, object]:
    manifest: dict[str, object] = {
        "name": HOST_NAME,
        "description": "yttl: starts yttl serve when needed and pairs the extension with it",
        "path": str(launcher),
        "type": "stdio",
    }
    if browser == "firefox":
        manifest["allowed_extensions"] = [FIREFOX_EXTENSION_ID]
    else:
        manifest["allowed_origins"] = [f"chrome-extension://{CHROME_EXTENSION_ID}/"]
    return manifest


def install(browsers: list[str], manifest_dir: Path | None = None) -> list[Path]:
    """Register the host for ``browsers``; the manifests written. ``manifest_dir`` puts
    them in one folder instead (a browser profile of one's own: Chromium reads
    ``PROFILE/NativeMessagingHosts``)."""
    launcher = _write_launcher()
    written = []
    for browser in browsers:
        for folder in [manifest_dir] if manifest_dir else manifest_dirs(browser):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{HOST_NAME}.json"  # the file name must be the host's name
            path.write_text(json.dumps(host_manifest(browser, launcher), indent=2) + "\n")
            written.append(path)
            if sys.platform.startswith("win") and manifest_dir is None:
                _register_on_windows(browser, path)
    return written


def _register_on_windows(browser: str, manifest: Path) -> None:  # pragma: no cover - Windows
    import importlib

    winreg: Any = importlib.import_module("winreg")  # only there
    base = {"chrome": r"Software\Google\Chrome", "chromium": r"Software\Chromium",
            "firefox": r"Software\Mozilla"}[browser]  # fmt: skip
    key = winreg.CreateKey(winreg.HKEY_CURRENT_USER, rf"{base}\NativeMessagingHosts\{HOST_NAME}")
    winreg.SetValue(key, "", winreg.REG_SZ, str(manifest))


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    fix: str = ""


def doctor(manifest_dir: Path | None = None) -> list[Check]:
    """Each thing the extension needs on this machine, and how to fix what is missing."""
    from yttl.serve.state_file import read_state

    checks = []
    launcher = launcher_path()
    runnable = launcher.is_file() and os.access(launcher, os.X_OK)
    checks.append(Check(runnable, f"the host launcher {launcher}",
                        "run yttl extension install"))  # fmt: skip
    for browser in BROWSERS:
        for folder in [manifest_dir] if manifest_dir else manifest_dirs(browser):
            path = folder / f"{HOST_NAME}.json"
            try:
                data = json.loads(path.read_text())
                good = data.get("name") == HOST_NAME and Path(data.get("path", "")).is_file()
            except (OSError, ValueError):
                good = False
            checks.append(Check(good, f"{browser}: the host manifest {path}",
                                f"run yttl extension install --browser {browser}"))  # fmt: skip
    state = read_state()
    running = f"yttl serve is running at {state['url']}" if state else "yttl serve is running"
    checks.append(Check(state is not None, running, "start it with yttl serve (the host "
                        "starts it by itself when the extension asks)"))  # fmt: skip
    unpacked = extension_dir()
    checks.append(Check(unpacked is not None, f"the extension's folder {unpacked or '(not found)'}",
                        "load extension/ of yttl's checkout: chrome://extensions, "
                        "Load unpacked"))  # fmt: skip
    return checks


def extension_dir() -> Path | None:
    """``extension/`` of the checkout this yttl runs from, if it is one."""
    folder = Path(__file__).resolve().parents[2] / "extension"
    return folder if (folder / "manifest.json").is_file() else None
