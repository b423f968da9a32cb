"""Where videos come from: site URLs, saved info files, local media, and their captions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2

from yttl.errors import InputError, NetworkError
from yttl.models import CaptionTrack, VideoInfo
from yttl.sources.captions import choose_track, decode_caption_bytes, parse_captions
from yttl.sources.local import resolve_file
from yttl.sources.ytdlp import load_info_json, resolve_url

__all__ = [
    "bare_word",
    "check_source",
    "check_url",
    "choose_track",
    "fetch_track_text",
    "looks_like_url",
    "missing_file",
    "parse_captions",
    "resolve_source",
]

_BARE_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def looks_like_url(source: str) -> bool:
    return "://" in source


def missing_file(source: str) -> Path | None:
    """The path ``source`` names when it is meant as a file and none is there."""
    if looks_like_url(source):
        return None
    path = Path(source).expanduser()
    if path.exists() or _BARE_YOUTUBE_ID.match(source):
        return None
    return path


_BARE_WORD = re.compile(r"^\w[\w-]*$")


def bare_word(source: str) -> bool:
    """A word that is no URL, no path (no separator, no extension) and no file here, nor a
    YouTube id: a typo or a search term, never a video, in any batch."""
    return (
        _BARE_WORD.match(source) is not None
        and not _BARE_YOUTUBE_ID.match(source)
        and not Path(source).exists()
    )


_GIVE = "give a URL such as https://www.youtube.com/watch?v=ID, a media file or an info.json"
_HOST = re.compile(r"^[\w.-]+$|^[0-9a-f:.]+$")  # a name, or an IP (IPv6 without brackets)


def check_url(source: str) -> str:
    """An http(s) URL with a host, or an ``InputError`` before anything is fetched."""
    if not source.lower().startswith(("http://", "https://")):
        raise InputError(f"unsupported URL scheme in {source!r}; use http(s)", hint=_GIVE)
    host = urlsplit(source).hostname
    if not host:
        raise InputError(f"{source!r} is not a valid URL: it names no host", hint=_GIVE)
    if not _HOST.match(host):
        raise InputError(f"{source!r} is not a valid URL: {host!r} is no host name", hint=_GIVE)
    return source


def check_source(source: str) -> None:
    """What can be told of a source with no network and no model: a malformed URL, a
    missing file, a file that is no media. Said before any model is looked up or fetched."""
    if looks_like_url(source):
        check_url(source)
        return
    path = Path(source).expanduser()
    if path.name.endswith(".info.json") and path.is_file():
        return  # read when it is expanded (it may be a playlist)
    if not path.exists() and _BARE_YOUTUBE_ID.match(source):
        return  # a YouTube id
    resolve_file(path)


def resolve_source(source: str, ytdlp_params: Mapping[str, Any]) -> VideoInfo:
    """A URL goes to yt-dlp, ``*.info.json`` is read as an info dict, a path is media."""
    if looks_like_url(source):
        return resolve_url(check_url(source), ytdlp_params)
    path = Path(source).expanduser()
    if path.name.endswith(".info.json") and path.is_file():
        return load_info_json(path)
    if not path.exists() and _BARE_YOUTUBE_ID.match(source):
        return resolve_url(f"https://www.youtube.com/watch?v={source}", ytdlp_params)
    return resolve_file(path)


async def fetch_track_text(track: CaptionTrack, *, timeout: float = 30.0) -> str:
    """The text of a caption track, from its file or its URL."""
    if track.path is not None:
        try:
            data = await asyncio.to_thread(Path(track.path).read_bytes)
            return decode_caption_bytes(data)
        except OSError as exc:
            raise InputError(f"cannot read caption file {track.path}: {exc}") from exc
    if track.url is None:
        raise InputError("caption track has neither a file nor a URL")
    try:
        async with httpx2.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(track.url)
            response.raise_for_status()
    except httpx2.HTTPStatusError as exc:
        raise NetworkError(f"caption download failed: HTTP {exc.response.status_code}") from exc
    except httpx2.HTTPError as exc:
        raise NetworkError(f"caption download failed: {type(exc).__name__}") from exc
    return decode_caption_bytes(response.content)
