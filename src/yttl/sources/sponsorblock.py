"""SponsorBlock: drop the transcript where sponsors, intros and the like were marked.

The hash-prefix endpoint is used so the server never learns which video is being read.
A 404 means the video has no segments; an unreachable server is a warning, not a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

import httpx2

from yttl.models import TranscriptSegment

__all__ = ["DEFAULT_API", "fetch_segments", "remove_segments"]

logger = logging.getLogger(__name__)
DEFAULT_API = "https://sponsor.ajay.app"


async def fetch_segments(
    video_id: str,
    categories: Sequence[str],
    *,
    api_base: str = DEFAULT_API,
    timeout: float = 10.0,
) -> list[tuple[float, float]] | None:
    """``(start, end)`` of the marked segments; ``None`` when the server could not be asked."""
    prefix = hashlib.sha256(video_id.encode()).hexdigest()[:4]
    url = f"{api_base.rstrip('/')}/api/skipSegments/{prefix}"
    params = {"categories": json.dumps(list(categories))}
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, params=params)
    except httpx2.HTTPError as exc:
        logger.warning("SponsorBlock is unreachable (%s); keeping the whole transcript", exc)
        return None
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        logger.warning(
            "SponsorBlock answered HTTP %s; keeping the whole transcript", response.status_code
        )
        return None
    try:
        videos = response.json()
        segments = [
            (float(s["segment"][0]), float(s["segment"][1]))
            for video in videos
            if video.get("videoID") == video_id
            for s in video.get("segments", [])
            if s.get("category") in categories
        ]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        logger.warning("SponsorBlock's answer was not understood; keeping the whole transcript")
        return None
    return sorted(segments)


def remove_segments(
    segments: Sequence[TranscriptSegment], skipped: Sequence[tuple[float, float]]
) -> list[TranscriptSegment]:
    """Drop every transcript segment that overlaps a skipped span."""
    return [
        seg
        for seg in segments
        if not any(seg.start < end and seg.end > start for start, end in skipped)
    ]
