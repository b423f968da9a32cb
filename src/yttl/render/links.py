"""Timestamps as text and as links to that moment of the video."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from yttl.models import VideoInfo

__all__ = ["format_clock", "timestamp_url"]


def format_clock(seconds: float) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` from there."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _with_query(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    query.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def timestamp_url(video: VideoInfo, seconds: float) -> str:
    """YouTube ``t=Ns``, Twitch ``t=XhYmZs``, a local file ``#t=N``, else the plain URL."""
    t = max(int(seconds), 0)
    if video.is_youtube:
        return f"https://www.youtube.com/watch?v={video.id}&t={t}s"
    if video.extractor.lower().startswith("twitch"):
        hours, rest = divmod(t, 3600)
        minutes, secs = divmod(rest, 60)
        return _with_query(video.url, "t", f"{hours}h{minutes}m{secs}s")
    if video.source == "file" or video.url.startswith("file:"):
        return f"{video.url.split('#')[0]}#t={t}"
    return video.url
