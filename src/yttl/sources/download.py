"""Audio of a site video, downloaded with yt-dlp (``bestaudio``) into a work directory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from yttl.errors import InputError, NetworkError
from yttl.models import VideoInfo

__all__ = ["download_audio"]

ByteProgress = Callable[[int, int | None], None]


def download_audio(
    video: VideoInfo,
    params: Mapping[str, Any],
    directory: Path,
    on_progress: ByteProgress | None = None,
) -> Path:
    """Download the best audio-only format (else the best format) and return its path."""
    import yt_dlp

    def hook(status: dict[str, Any]) -> None:
        if on_progress and status.get("status") in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            on_progress(int(status.get("downloaded_bytes") or 0), int(total) if total else None)

    options = {
        **params,
        "format": "bestaudio/best",
        "outtmpl": {"default": str(directory / "audio.%(ext)s")},
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
                f"audio download failed: {network_reason(message)}",
                hint="check the connection, or give a media file that is on this machine",
            ) from exc
        raise InputError(f"audio download failed: {message}") from exc
    if not path.is_file():
        found = sorted(directory.glob("audio.*"))
        if not found:
            raise InputError("yt-dlp finished but wrote no audio file")
        path = found[0]
    return path
