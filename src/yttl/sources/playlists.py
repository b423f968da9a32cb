"""Batches of videos: playlist and channel URLs, saved playlist files, batch files.

A URL is read with yt-dlp's flat extraction: a playlist or channel gives its entries
without resolving each (that happens later, a few videos at a time); a single video's
full info comes back at once and is kept, so it is not resolved twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yttl.errors import InputError, UsageError, YttlError
from yttl.models import InfoEntry

__all__ = ["BatchEntry", "PlaylistSelection", "expand_sources", "read_batch_file"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlaylistSelection:
    """Which entries of a playlist (yt-dlp's ``--playlist-items``, ``--max-downloads``,
    ``--dateafter`` meanings)."""

    items: str | None = None
    max_videos: int | None = None
    dateafter: str | None = None

    def date_floor(self) -> dt.date | None:
        if not self.dateafter:
            return None
        from yt_dlp.utils import date_from_str

        try:
            day: dt.date = date_from_str(self.dateafter, strict=True)
        except ValueError as exc:
            raise UsageError(f"--dateafter: {exc}", hint="e.g. 20240131 or today-2weeks") from exc
        return day

    def indices(self, count: int) -> list[int]:
        """0-based indices of the chosen entries, in playlist order, without repeats."""
        if not self.items:
            return list(range(count))
        from yt_dlp.utils import PlaylistEntries

        chosen: list[int] = []
        try:
            for part in PlaylistEntries.parse_playlist_items(self.items):
                if isinstance(part, int):
                    chosen.append(part - 1 if part > 0 else count + part)
                    continue
                start = part.start or 1
                start = start - 1 if start > 0 else count + start
                end = part.stop if part.stop is not None else count
                end = int(min(end, count)) if end > 0 else int(count + end + 1)
                chosen.extend(range(start, end, part.step or 1))
        except ValueError as exc:
            raise UsageError(f"--playlist-items: {exc}", hint="e.g. 1-3,7,-2:") from exc
        return list(dict.fromkeys(i for i in chosen if 0 <= i < count))

    def choose(self, entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        floor = self.date_floor()
        chosen = []
        for index in self.indices(len(entries)):
            entry = entries[index]
            day = _entry_date(entry)
            if floor is not None and day is not None and day < floor:
                continue  # unknown dates stay, as in yt-dlp's flat extraction
            chosen.append(entry)
        return chosen[: self.max_videos] if self.max_videos else chosen


def _entry_date(entry: Mapping[str, Any]) -> dt.date | None:
    text = entry.get("upload_date")
    if isinstance(text, str) and len(text) == 8 and text.isdigit():
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    stamp = entry.get("timestamp") or entry.get("release_timestamp")
    if isinstance(stamp, int | float):
        return dt.datetime.fromtimestamp(stamp, dt.UTC).date()
    return None


@dataclass(frozen=True)
class BatchEntry:
    """One video of a batch: a URL or path, or an info dict; ``label`` names it before
    it is resolved (in progress lines, in the index when it fails early)."""

    source: str | InfoEntry
    label: str
    playlist: str | None = None
    error: YttlError | None = None  # the source could not even be listed


def read_batch_file(path: str) -> list[str]:
    """One source a line; blank lines and ``#``, ``;`` or ``]`` comments skipped (yt-dlp's
    ``--batch-file``); ``-`` reads standard input."""
    import sys

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read batch file {path}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith(("#", ";", "]"))]


def _entry_label(entry: Mapping[str, Any]) -> str:
    return str(entry.get("title") or entry.get("id") or entry.get("url") or "video")


def _is_playlist(info: Mapping[str, Any]) -> bool:
    return info.get("_type") in ("playlist", "multi_video") and isinstance(
        info.get("entries"), list | tuple
    )


def _flatten(info: Mapping[str, Any], selection: PlaylistSelection, *,
             url_list: bool = False) -> list[BatchEntry]:  # fmt: skip
    """Entries of a playlist (nested playlists, such as a channel's tabs, opened too)."""
    title = str(info.get("title") or info.get("id") or "playlist")
    entries = [e for e in info.get("entries") or [] if isinstance(e, Mapping)]
    entries = selection.choose(entries)
    result: list[BatchEntry] = []
    for entry in entries:
        if _is_playlist(entry) or entry.get("_type") == "playlist":
            result.extend(_flatten(entry, selection, url_list=url_list))
        else:
            result.append(BatchEntry(InfoEntry(dict(entry), "url" if url_list else "info_json"),
                                     _entry_label(entry), title))  # fmt: skip
    return result[: selection.max_videos] if selection.max_videos else result


def _from_url(
    url: str, params: Mapping[str, Any], selection: PlaylistSelection
) -> list[BatchEntry]:
    import yt_dlp

    from yttl.sources.ytdlp import ytdlp_error

    flat = dict(params, extract_flat="in_playlist")
    if selection.items:
        flat["playlist_items"] = selection.items
    elif selection.max_videos:
        flat["playlistend"] = selection.max_videos
    try:
        with yt_dlp.YoutubeDL(flat) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        raise ytdlp_error(exc) from exc
    if not isinstance(info, dict):
        raise InputError(f"yt-dlp returned no information for {url}")
    if _is_playlist(info):
        # yt-dlp applied --playlist-items already; dates and the count are applied here
        return _flatten(info, PlaylistSelection(None, selection.max_videos, selection.dateafter),
                        url_list=True)  # fmt: skip
    return [BatchEntry(InfoEntry(info, "url"), _entry_label(info))]


def _from_info_file(path: Path, selection: PlaylistSelection) -> list[BatchEntry] | None:
    """A saved playlist's entries, or None when the file holds one video."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # one video's file, or a broken one: resolving it says what is wrong
    if not isinstance(data, dict) or not _is_playlist(data):
        return None
    entries = _flatten(data, selection)
    if not entries:
        logger.warning("%s: no entry of the playlist is selected", path)
    return entries


def expand_sources(
    sources: Iterable[str], ytdlp_params: Mapping[str, Any], selection: PlaylistSelection
) -> tuple[list[BatchEntry], bool]:
    """Every video the sources name, and whether that is a batch (several sources, or a
    playlist). Blocking (yt-dlp): run it in a thread."""
    from yttl.sources import check_url, looks_like_url

    entries: list[BatchEntry] = []
    batch = False
    sources = list(sources)
    for source in sources:
        path = Path(source).expanduser()
        if looks_like_url(source):
            try:
                found = _from_url(check_url(source), ytdlp_params, selection)
            except YttlError as exc:  # one bad source never stops the others
                entries.append(BatchEntry(source, source, error=exc))
                continue
            batch = batch or len(found) != 1 or found[0].playlist is not None
            entries.extend(found)
        elif path.name.endswith(".info.json") and path.is_file():
            found_in_file = _from_info_file(path, selection)
            if found_in_file is None:
                entries.append(BatchEntry(source, source))
            else:
                batch = True
                entries.extend(found_in_file)
        else:
            entries.append(BatchEntry(source, source))
    return entries, batch or len(sources) > 1
