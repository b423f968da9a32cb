"""Where yttl writes a local file's outputs: its id carries a digest of its path."""

from __future__ import annotations

from pathlib import Path

from yttl.render import output_stem
from yttl.sources.local import file_video_id


def output_of(directory: Path, media: Path, ext: str) -> Path:
    """``directory/<the id of media>.<ext>``."""
    return directory / f"{output_stem(file_video_id(media.resolve()))}.{ext}"
