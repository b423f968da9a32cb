"""Videos from sites (through yt-dlp) and from saved yt-dlp info files."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yttl.errors import InputError, NetworkError, UnsupportedSourceError
from yttl.models import CaptionTrack, Chapter, SourceKind, VideoInfo

__all__ = [
    "YtDlpOptions",
    "info_from_dict",
    "load_info_json",
    "network_reason",
    "resolve_url",
    "ytdlp_error",
    "ytdlp_params",
]

logger = logging.getLogger(__name__)

YtDlpOptions = Mapping[str, Any]
_ERROR_PREFIX = re.compile(r"^(ERROR:\s*)?(\[[^\]]+\]\s*)?")


class _QuietLogger:
    """yt-dlp talks through this instead of printing on our progress display."""

    def debug(self, msg: str) -> None:
        logger.debug(msg)

    def info(self, msg: str) -> None:
        logger.debug(msg)

    def warning(self, msg: str) -> None:
        logger.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        logger.debug(msg)


def ytdlp_params(
    *,
    cookies: str | None = None,
    cookies_from_browser: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Parameters for ``yt_dlp.YoutubeDL`` from yttl's pass-through options."""
    params: dict[str, Any] = {"quiet": True, "no_warnings": True, "logger": _QuietLogger()}
    if cookies:
        params["cookiefile"] = cookies
    if cookies_from_browser:
        browser, _, profile = cookies_from_browser.partition(":")
        params["cookiesfrombrowser"] = (browser, profile or None, None, None)
    params.update(extra or {})
    return params


def resolve_url(url: str, params: Mapping[str, Any]) -> VideoInfo:
    """``extract_info(download=False)`` and nothing more."""
    import yt_dlp  # slow to import; only URL sources pay for it

    try:
        with yt_dlp.YoutubeDL(dict(params)) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        raise ytdlp_error(exc) from exc
    if not isinstance(info, dict):
        raise InputError(f"yt-dlp returned no information for {url}")
    return info_from_dict(info, source="url")


def ytdlp_error(exc: BaseException) -> InputError | NetworkError:
    """A yt-dlp ``DownloadError`` as one of yttl's errors, in one line."""
    message = _ERROR_PREFIX.sub("", (str(exc).strip().splitlines() or [""])[0])
    if "Unsupported URL" in message or "is not a valid URL" in message:
        return UnsupportedSourceError(
            f"yt-dlp cannot read this URL: {message}",
            hint="give a video URL of a site yt-dlp supports, a media file or an info.json",
        )
    if any(sign in message for sign in _NETWORK_SIGNS):
        return NetworkError(
            f"cannot reach the video site: {network_reason(message)}",
            hint="check the connection; a media file or an info.json that is "
            "on this machine needs none",
        )
    return InputError(f"yt-dlp: {message}")


_NETWORK_SIGNS = ("Unable to download", "timed out", "TransportError", "Errno", "refused")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*([^>'\")\]]+)")
_CAUSED_BY = re.compile(r"\s*\(caused by .*$")


def network_reason(message: str) -> str:
    """yt-dlp's message says the socket's reason twice (``<urlopen error [Errno -3] ...>
    (caused by TransportError('<urlopen error [Errno -3] ...>'))``): once, in words."""
    message = _CAUSED_BY.sub("", message).strip()
    found = _ERRNO.search(message)
    if found:
        return found.group(1).strip().rstrip(".").lower()
    return message


def load_info_json(path: Path) -> VideoInfo:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a UTF-8 text file") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a yt-dlp info file: it holds no JSON object")
    return info_from_dict(data, source="info_json", origin=str(path))


def _tracks(value: object, automatic: bool) -> tuple[CaptionTrack, ...]:
    if not isinstance(value, dict):
        return ()
    tracks: list[CaptionTrack] = []
    for language, formats in value.items():
        if language == "live_chat" or not isinstance(formats, list):
            continue
        for fmt in formats:
            if isinstance(fmt, dict) and isinstance(fmt.get("url"), str) and fmt.get("ext"):
                tracks.append(
                    CaptionTrack(
                        str(language), str(fmt["ext"]), url=fmt["url"], automatic=automatic
                    )
                )
    return tuple(tracks)


def _chapters(value: object, duration: float) -> tuple[Chapter, ...]:
    if not isinstance(value, list):
        return ()
    chapters = []
    for item in value:
        if not isinstance(item, dict):
            continue
        try:
            start = float(item.get("start_time", 0))
            end = float(item.get("end_time", duration))
        except (TypeError, ValueError):
            continue
        chapters.append(Chapter(start, end, str(item.get("title") or "").strip()))
    return tuple(chapters)


def info_from_dict(
    info: Mapping[str, Any], *, source: SourceKind, origin: str = "the video"
) -> VideoInfo:
    """A yt-dlp info dict as a ``VideoInfo``, with a clear error for the wrong shape."""
    if info.get("_type") in ("playlist", "multi_video"):
        raise UnsupportedSourceError(
            f"{origin} is a playlist; give the URL of one video",
        )
    video_id = info.get("id")
    if not isinstance(video_id, str) or not video_id:
        raise InputError(f"{origin} is not a yt-dlp info dict: it has no 'id'")
    duration = info.get("duration")
    if isinstance(duration, str):
        try:
            duration = float(duration)
        except ValueError:
            duration = None
    if info.get("is_live"):
        raise UnsupportedSourceError(f"{origin} is a live stream that has not ended")
    if duration is None:
        duration = 0.0  # unknown: measured later from the audio or the captions
    elif not isinstance(duration, int | float) or isinstance(duration, bool):
        raise InputError(f"{origin} has a duration that is not a number: {duration!r}")
    elif duration <= 0:
        raise InputError(f"{origin} has a duration of {duration} s: nothing to summarize")
    url = info.get("webpage_url") or info.get("original_url") or info.get("url") or ""
    return VideoInfo(
        id=video_id,
        title=str(info.get("title") or video_id),
        url=str(url),
        duration=float(duration),
        extractor=str(info.get("extractor_key") or info.get("extractor") or "generic"),
        source=source,
        chapters=_chapters(info.get("chapters"), float(duration)),
        subtitles=_tracks(info.get("subtitles"), automatic=False),
        automatic_captions=_tracks(info.get("automatic_captions"), automatic=True),
        upload_date=str(info["upload_date"]) if info.get("upload_date") else None,
        channel=str(info.get("channel") or info.get("uploader") or "") or None,
        language=str(info["language"]) if info.get("language") else None,
        description=str(info["description"]) if info.get("description") else None,
    )
