"""Audio of a site video, downloaded with yt-dlp (``bestaudio``) into a work directory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from yttl.errors import InputError, NetworkError
from yttl.models import VideoInfo

__all__ = ["VIDEO_FORMAT", "download_audio", "download_video"]

VIDEO_FORMAT = "wv[height>=360]/wv*[height>=360]/bv*/b"
"""For slides: the smallest picture of at least 360p, video only where there is one."""

ByteProgress = Callable[[int, int | None], None]


def download_audio(
    video: VideoInfo,
    params: Mapping[str, Any],
    directory: Path,
    on_progress: ByteProgress | None = None,
) -> Path:
    """Download the best audio-only format (else the best format) and return its path."""
    return _download(video, params, directory, "bestaudio/best", "audio", on_progress)


def download_video(video: VideoInfo, params: Mapping[str, Any], directory: Path) -> Path:
    """Download a low-resolution picture, for slides, and return its path."""
    return _download(video, params, directory, VIDEO_FORMAT, "video")


def _download(
    video: VideoInfo,
    params: Mapping[str, Any],
    directory: Path,
    fmt: str,
    what: str,
    on_progress: ByteProgress | None = None,
) -> Path:
    import yt_dlp

    def hook(status: dict[str, Any]) -> None:
        if on_progress and status.get("status") in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            on_progress(int(status.get("downloaded_bytes") or 0), int(total) if total else None)

    options = {
        **params,
        "format": fmt,
        "outtmpl": {"default": str(directory / f"{what}.%(ext)s")},
        "progress_hooks": [hook],
        "noplaylist": True,
        "noprogress": True,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(video.url, download=True)
            path = Path(ydl.prepare_filename(info))
    except yt_dlp.utils.DownloadError as exc:
        message = str(exc).strip().splitlines()[0].removeprefix("ERROR: ")
        if "Unable to download" in message or "HTTP Error" in message:
            from yttl.sources.ytdlp import network_reason

            raise NetworkError(
                f"{what} download failed: {network_reason(message)}",
                hint="check the connection, or give a media file that is on this machine",
            ) from exc
        raise InputError(f"{what} download failed: {message}") from exc
    if not path.is_file():
        found = sorted(directory.glob(f"{what}.*"))
        if not found:
            raise InputError(f"yt-dlp finished but wrote no {what} file")
        path = found[0]
    return path
