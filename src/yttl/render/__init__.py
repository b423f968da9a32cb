"""Renderers, and writing their output atomically under a sanitized name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the library's links import this package: they need no models
    from yttl.models import RunResult

__all__ = [
    "SUMMARY_FORMATS",
    "TRANSCRIPT_FORMATS",
    "atomic_write",
    "check_writable",
    "output_path",
    "output_stem",
    "render",
    "write_outputs",
    "write_slides",
]

SUMMARY_FORMATS = ("html", "md", "json")
TRANSCRIPT_FORMATS = ("txt", "srt", "vtt")


def _renderers() -> dict[str, Callable[[RunResult], str]]:
    # imported when something is rendered: jinja2 is not for `yttl search`
    from yttl.render.html import to_html
    from yttl.render.jsonout import to_json
    from yttl.render.markdown import to_markdown
    from yttl.render.subtitles import to_srt, to_txt, to_vtt

    return {
        "html": to_html,
        "md": to_markdown,
        "json": to_json,
        "txt": lambda r: to_txt(r.transcript.segments),
        "srt": lambda r: to_srt(r.transcript.segments),
        "vtt": lambda r: to_vtt(r.transcript.segments),
    }


_UNSAFE = re.compile(r"[^\w.-]+")
RESERVED_STEMS = ("index",)  # a batch's index.html and index.json


def output_stem(video_id: str) -> str:
    """A file name from an id: no separators, no leading dot, bounded length."""
    stem = _UNSAFE.sub("_", video_id).strip("._")[:120] or "video"
    return f"{stem}-video" if stem.lower() in RESERVED_STEMS else stem


def render(result: RunResult, fmt: str) -> str:
    return _renderers()[fmt](result)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: never a torn file,
    even on Ctrl-C (the temporary file goes with it). Every output goes through here. The
    file gets the mode any other tool's output would (0666 less the umask), not the
    temporary file's private 0600."""
    import tempfile  # here: the library commands import this package for its links only

    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_writable(directory: Path) -> None:
    """Make ``directory`` and write a file in it, before any paid work depends on it."""
    import tempfile

    from yttl.errors import UsageError

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".yttl-check-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write to the output folder {directory}: {exc.strerror or exc}",
            hint="choose another with -o DIR",
        ) from exc


def output_path(video_id: str, fmt: str, output_dir: Path) -> Path:
    """Where a video's output in ``fmt`` goes: the one naming rule."""
    return output_dir / f"{output_stem(video_id)}.{fmt}"


def write_outputs(result: RunResult, formats: Iterable[str], output_dir: Path) -> list[Path]:
    written = []
    if result.slides:  # first: the pages link to them
        write_slides(result, output_dir)
    for fmt in dict.fromkeys(formats):
        path = output_path(result.video.id, fmt, output_dir)
        atomic_write(path, render(result, fmt))
        written.append(path)
    return written


def write_slides(result: RunResult, output_dir: Path) -> Path:
    """Each slide's image in ``OUT/ID.slides/`` (named by its start), written atomically."""
    from yttl.render.jsonout import slides_folder

    folder = output_dir / slides_folder(result.video.id)
    folder.mkdir(parents=True, exist_ok=True)
    for slide in result.slides or ():
        atomic_write(folder / slide.name, slide.image)
    return folder
