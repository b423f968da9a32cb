"""Videos the tests make themselves: an info.json whose caption track (WebVTT written
here, served by the loopback server) has a cue every 20 seconds, for as long as asked.
No ``../shared`` needed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.server import LoopbackServer

TOPICS = ("memory", "sleep", "attention", "emotion", "learning", "language", "vision",
          "habits", "stress", "motivation", "perception", "dreams")  # fmt: skip


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.000"


def caption_text(seconds: int, *, every: int = 20) -> str:
    cues = []
    for start in range(0, seconds, every):
        topic = TOPICS[(start // 300) % len(TOPICS)]
        cues.append(f"{_clock(start)} --> {_clock(start + every - 1)}\n"
                    f"At minute {start // 60} we talk about {topic} and how it works.\n")  # fmt: skip
    return "WEBVTT\n\n" + "\n".join(cues)


def synthetic_video(server: LoopbackServer, directory: Path, name: str = "synth", *,
                    seconds: int = 600, title: str | None = None) -> Path:  # fmt: skip
    """``directory/NAME.info.json`` for a YouTube-like video of ``seconds``."""
    server.state.files[f"{name}.vtt"] = caption_text(seconds).encode()
    info = {
        "id": name, "title": title or f"A lecture called {name}", "duration": seconds,
        "webpage_url": f"https://www.youtube.com/watch?v={name}", "extractor": "youtube",
        "extractor_key": "Youtube", "channel": "Test channel", "language": "en",
        "subtitles": {"en": [{"ext": "vtt", "url": f"{server.url}/files/{name}.vtt"}]},
        "automatic_captions": {},
    }  # fmt: skip
    path = directory / f"{name}.info.json"
    path.write_text(json.dumps(info))
    return path
