"""Videos for tests and benchmarks, made from the real tracks in ``shared/data/youtube``.

``info.json`` fixtures get their caption URLs pointed at a loopback server; the two-hour
video is twelve episodes laid end to end, ten minutes apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.support.server import LoopbackServer

DATA = Path(
    os.environ.get("YTTL_TEST_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data"
)
YOUTUBE = DATA / "youtube"
AUDIO = DATA / "audio"


def corpus_present() -> bool:
    """Whether the corpus is there: an empty or partial folder is no corpus."""
    return YOUTUBE.is_dir() and AUDIO.is_dir()


def video_ids() -> list[str]:
    """The corpus's episodes (none without the corpus: its tests are skipped then)."""
    if not YOUTUBE.is_dir():
        return []
    return sorted(p.name for p in YOUTUBE.iterdir() if (p / "info.json").is_file())


def load_info(video_id: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((YOUTUBE / video_id / "info.json").read_text())
    return info


def point_captions_at(info: dict[str, Any], server: LoopbackServer, prefix: str) -> None:
    """Rewrite every caption URL: json3 and vtt to the served files, others to a 404."""
    for key in ("subtitles", "automatic_captions"):
        for formats in info.get(key, {}).values():
            for fmt in formats:
                fmt["url"] = f"{server.url}/files/{prefix}.{fmt['ext']}"


def serve_video(server: LoopbackServer, video_id: str, directory: Path) -> Path:
    """An info.json for a real episode whose captions come from ``server``."""
    info = load_info(video_id)
    for ext in ("json3", "vtt"):
        server.state.files[f"{video_id}.{ext}"] = (
            YOUTUBE / video_id / f"captions.en.{ext}"
        ).read_bytes()
    point_captions_at(info, server, video_id)
    path = directory / f"{video_id}.info.json"
    path.write_text(json.dumps(info))
    return path


def two_hour_video(
    server: LoopbackServer, directory: Path, *, parts: int = 12, part_seconds: int = 600
) -> Path:
    """Twelve episodes, each cut to 10 minutes and shifted by its offset: 7,200 s in all."""
    ids = video_ids()[:parts]
    events: list[dict[str, Any]] = []
    for i, video_id in enumerate(ids):
        track = json.loads((YOUTUBE / video_id / "captions.en.json3").read_text())
        for event in track["events"]:
            if "segs" in event and event.get("tStartMs", 0) < part_seconds * 1000:
                shifted = dict(event)
                shifted["tStartMs"] = event["tStartMs"] + i * part_seconds * 1000
                events.append(shifted)
    name = f"twohour-{parts}"
    server.state.files[f"{name}.json3"] = json.dumps(
        {"wireMagic": "pb3", "events": events}
    ).encode()
    info = load_info(ids[0])
    info.update(
        id=name,
        title=f"{parts} episodes of Crash Course Psychology",
        duration=parts * part_seconds,
        chapters=None,
        subtitles={"en": [{"ext": "json3", "url": ""}]},
        automatic_captions={},
    )
    point_captions_at(info, server, name)
    path = directory / f"{name}.info.json"
    path.write_text(json.dumps(info))
    return path
