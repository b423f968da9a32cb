"""Videos the tests make themselves: an info.json whose caption track (WebVTT written
here, served by the loopback server) has a cue every 20 seconds, for as long as asked.
No ``../shared`` needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.server import LoopbackServer

TOPICS = ("memory", "sleep", "attention", "emotion", "learning", "language", "vision",
          "habits", "stress", "motivation", "perception", "dreams")  # fmt: skip


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.000"


LECTURE = (  # a sentence every 20 s, five minutes on each subject, in plain words
    (
        "The hippocampus binds the details of an event into an episode we can recall later.",
        "Each time we remember something we rebuild it, and the rebuilding can change it.",
        "Old experiences come back when a smell or a song brings up their context.",
    ),
    (
        "During deep slow-wave sleep the brain replays the day and keeps what mattered.",
        "After a full night of rest people solve puzzles they could not solve the evening before.",
        "Dreams come mostly in the REM stage, near the morning, when the eyes move fast.",
    ),
    (
        "Selective attention filters the flood of sensory input down to one stream.",
        "At a noisy party we can follow one conversation and still hear our own name.",
        "Doing two demanding tasks at once costs time, because focus switches between them.",
    ),
)


def caption_text(seconds: int, *, every: int = 20, lecture: bool = False) -> str:
    """WebVTT with a cue every ``every`` seconds: a topic word a cue, or (``lecture``) the
    sentences of ``LECTURE``, a subject each five minutes."""
    cues = []
    for start in range(0, seconds, every):
        block = (start // 300) % len(TOPICS)
        if lecture:
            sentences = LECTURE[block % len(LECTURE)]
            text = sentences[(start // every) % len(sentences)]
        else:
            text = f"At minute {start // 60} we talk about {TOPICS[block]} and how it works."
        cues.append(f"{_clock(start)} --> {_clock(start + every - 1)}\n{text}\n")
    return "WEBVTT\n\n" + "\n".join(cues)


def synthetic_video(server: LoopbackServer, directory: Path, name: str = "synth", *,
                    seconds: int = 600, title: str | None = None,
                    lecture: bool = False) -> Path:  # fmt: skip
    """``directory/NAME.info.json`` for a YouTube-like video of ``seconds``."""
    server.state.files[f"{name}.vtt"] = caption_text(seconds, lecture=lecture).encode()
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


MODEL_NOT_FOUND = (404, {}, json.dumps({"error": {
    "code": "model_not_found", "message": "The model `nope` does not exist"}}).encode())  # fmt: skip


def unknown_model_batch(server: LoopbackServer, directory: Path, env: dict[str, str],
                        *extra: str) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """Four videos against a provider that has no model ``nope``: (the finished process,
    the batch's index)."""
    from tests.conftest import run_yttl

    server.state.fault = lambda call: MODEL_NOT_FOUND
    infos = [synthetic_video(server, directory, f"m{i}", seconds=900) for i in range(4)]
    out = directory / "out"
    result = run_yttl([*map(str, infos), "-lp", "openai", "-ou", server.openai_base_url,
                       "-om", "nope", "-o", str(out), "--no-open", "-f", "json",
                       "--max-concurrent-videos", "1", *extra], env, timeout=300)  # fmt: skip
    index = json.loads((out / "index.json").read_text()) if (out / "index.json").is_file() else {}
    return result, index
