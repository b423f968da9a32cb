"""Text read from a slide by Tesseract (Debian's ``tesseract-ocr`` with its English
model, ``tesseract-ocr-eng``), through its command line: nothing fetched at run time."""

from __future__ import annotations

import os
import shutil
import subprocess

from yttl.errors import MissingDependencyError, ProcessingError

__all__ = ["INSTALL", "check_ocr", "read_text"]

INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
TIMEOUT = 60.0


def check_ocr(language: str = "eng") -> str:
    """The ``tesseract`` program, or a one-line error naming the install command: found
    before any work, when slides are asked for."""
    program = shutil.which("tesseract")
    if program is None:
        raise MissingDependencyError(
            "--slides needs the OCR engine Tesseract, which is not installed", hint=INSTALL
        )
    try:
        listed = subprocess.run(
            [program, "--list-langs"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingDependencyError(
            f"--slides: Tesseract does not run ({exc})", hint=INSTALL
        ) from exc
    if language not in listed:
        raise MissingDependencyError(f"--slides: Tesseract has no {language!r} model", hint=INSTALL)
    return program


def read_text(program: str, image: bytes, language: str = "eng") -> str:
    """The text of ``image`` (PNG or JPEG bytes), one line per line of the slide. One
    thread: transcription has the other cores."""
    environ = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [program, "stdin", "stdout", "-l", language, "--psm", "3"],
            input=image,
            capture_output=True,
            timeout=TIMEOUT,
            env=environ,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProcessingError(f"OCR failed: {exc}") from exc
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise ProcessingError(f"OCR failed: {reason[-1] if reason else done.returncode}")
    lines = (" ".join(line.split()) for line in done.stdout.decode(errors="replace").splitlines())
    return "\n".join(line for line in lines if line)
