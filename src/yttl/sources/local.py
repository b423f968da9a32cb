"""Local media files: duration from PyAV, sidecar caption files next to them."""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path

from yttl.errors import InputError, UnsupportedSourceError
from yttl.models import CaptionTrack, VideoInfo

__all__ = ["BAD_MEDIA", "file_video_id", "probe_media", "resolve_file", "sidecar_tracks"]

CAPTION_EXTS = ("json3", "vtt", "srt")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def sidecar_tracks(media: Path) -> tuple[CaptionTrack, ...]:
    """``NAME.<lang>.json3|vtt|srt`` beside ``media`` (``NAME.vtt`` counts as language und)."""
    tracks: list[CaptionTrack] = []
    stem = media.stem
    for candidate in sorted(media.parent.glob(f"{glob.escape(stem)}.*")):
        if candidate == media or not candidate.is_file():
            continue
        rest = candidate.name[len(stem) + 1 :].split(".")
        if rest[-1] not in CAPTION_EXTS or len(rest) > 2:
            continue
        language = rest[0] if len(rest) == 2 else "und"
        tracks.append(CaptionTrack(language, rest[-1], path=str(candidate)))
    return tuple(tracks)


def probe_media(path: Path) -> tuple[float, bool]:
    """Duration in seconds and whether there is an audio stream."""
    import av

    try:
        with av.open(str(path)) as container:
            has_audio = bool(container.streams.audio)
            duration = container.duration / 1_000_000 if container.duration else 0.0
            if not duration:
                for stream in container.streams:
                    if stream.duration and stream.time_base:
                        duration = max(duration, float(stream.duration * stream.time_base))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as media: {_why(exc)}", hint=BAD_MEDIA) from exc
    return duration, has_audio


BAD_MEDIA = "check that it plays (ffprobe FILE); give a whole media file, a URL or an info.json"
"""What to do about a media file that cannot be read: the one hint for all the reasons."""


def _why(exc: Exception) -> str:
    """PyAV's reason in words, without its errno and the path said already."""
    import av

    if isinstance(exc, av.error.EOFError):
        return "it ends too soon (cut short while copied or downloaded?)"
    if isinstance(exc, av.error.InvalidDataError):
        return "it is not audio or video, or it is damaged"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return reason[:1].lower() + reason[1:]


def file_video_id(absolute: Path) -> str:
    """The name, plus a short digest of the whole path: two ``talk.mp4`` (or a camera's
    ``zoom_0.mp4`` in every meeting folder) are two videos, with their own outputs and
    library entries, and the same file keeps its id from run to run."""
    stem = _UNSAFE_ID.sub("_", absolute.stem).strip("._")[:80] or "video"
    digest = hashlib.sha1(str(absolute).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem}-{digest}"


def resolve_file(path: Path) -> VideoInfo:
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a media file, an info.json or a URL")
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"cannot read {path} as media: it is empty (0 bytes)", hint=BAD_MEDIA)
    duration, has_audio = probe_media(path)
    if duration <= 0:
        raise InputError(f"{path} has no duration: nothing to summarize")
    tracks = sidecar_tracks(path)
    if not has_audio and not tracks:
        raise UnsupportedSourceError(f"{path} has no audio stream and no caption file beside it")
    absolute = path.resolve()
    return VideoInfo(
        id=file_video_id(absolute),
        title=path.stem,
        url=absolute.as_uri(),
        duration=duration,
        extractor="file",
        source="file",
        subtitles=tracks,
        media_path=str(absolute),
    )
