"""Videos the tests make themselves: an info.json whose caption track (WebVTT written
here, served by the loopback server) has a cue every 20 seconds, for as long as asked.
No ``../shared`` needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.server import LoopbackServer

TOPICS = (
    "memory",
    "sleep",
    "attention",
    "emotion",
    "learning",
    "language",
    "vision",
    "habits",
    "stress",
    "motivation",
    "perception",
    "dreams",
)


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


def synthetic_video(
    server: LoopbackServer,
    directory: Path,
    name: str = "synth",
    *,
    seconds: int = 600,
    title: str | None = None,
    lecture: bool = False,
) -> Path:
    """``directory/NAME.info.json`` for a YouTube-like video of ``seconds``."""
    server.state.files[f"{name}.vtt"] = caption_text(seconds, lecture=lecture).encode()
    info = {
        "id": name,
        "title": title or f"A lecture called {name}",
        "duration": seconds,
        "webpage_url": f"https://www.youtube.com/watch?v={name}",
        "extractor": "youtube",
        "extractor_key": "Youtube",
        "channel": "Test channel",
        "language": "en",
        "subtitles": {"en": [{"ext": "vtt", "url": f"{server.url}/files/{name}.vtt"}]},
        "automatic_captions": {},
    }
    path = directory / f"{name}.info.json"
    path.write_text(json.dumps(info))
    return path


MODEL_NOT_FOUND = (
    404,
    {},
    json.dumps(
        {"error": {"code": "model_not_found", "message": "The model `nope` does not exist"}}
    ).encode(),
)


def unknown_model_batch(
    server: LoopbackServer, directory: Path, env: dict[str, str], *extra: str
) -> tuple[Any, dict[str, Any]]:
    """Four videos against a provider that has no model ``nope``: (the finished process,
    the batch's index)."""
    from tests.conftest import run_yttl

    server.state.fault = lambda call: MODEL_NOT_FOUND
    infos = [synthetic_video(server, directory, f"m{i}", seconds=900) for i in range(4)]
    out = directory / "out"
    result = run_yttl(
        [
            *map(str, infos),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-om",
            "nope",
            "-o",
            str(out),
            "--no-open",
            "-f",
            "json",
            "--max-concurrent-videos",
            "1",
            *extra,
        ],
        env,
        timeout=300,
    )
    index = json.loads((out / "index.json").read_text()) if (out / "index.json").is_file() else {}
    return result, index


EPISODE = "synthtalk01"
"""The id of ``episode``: eleven characters, as a YouTube video's."""


def episode_cues(seconds: int = 654, every: int = 5) -> list[tuple[int, int, str]]:
    """(start, end, text) of a caption track that starts at 0:01, a cue every ``every``
    seconds, a subject (``TOPICS``) each five minutes; every cue says something else."""
    return [
        (
            start,
            start + every - 1,
            f"At second {start} we talk about {TOPICS[(start // 300) % len(TOPICS)]} "
            f"and how it works.",
        )
        for start in range(1, seconds - 1, every)
    ]


def episode_vtt(seconds: int = 654) -> str:
    return "WEBVTT\n\n" + "\n".join(
        f"{_clock(a)} --> {_clock(b)}\n{text}\n" for a, b, text in episode_cues(seconds)
    )


def episode(
    server: LoopbackServer, directory: Path, name: str = EPISODE, *, seconds: int = 654
) -> Path:
    """``directory/NAME.info.json`` for an episode the tests make themselves, shaped as a
    real one: manual English captions as json3 (listed first) and vtt, served by
    ``server``, three chapters, 654 s (two sections: 0-300, 300-654)."""
    events = [
        {"tStartMs": a * 1000, "dDurationMs": (b - a) * 1000, "segs": [{"utf8": text}]}
        for a, b, text in episode_cues(seconds)
    ]
    server.state.files[f"{name}.json3"] = json.dumps(
        {"wireMagic": "pb3", "events": events}
    ).encode()
    server.state.files[f"{name}.vtt"] = episode_vtt(seconds).encode()
    third = seconds // 3
    info = {
        "id": name,
        "title": f"An episode called {name}",
        "duration": seconds,
        "webpage_url": f"https://www.youtube.com/watch?v={name}",
        "original_url": f"https://www.youtube.com/watch?v={name}",
        "extractor": "youtube",
        "extractor_key": "Youtube",
        "channel": "Test channel",
        "language": "en",
        "subtitles": {
            "en": [
                {"ext": "json3", "url": f"{server.url}/files/{name}.json3"},
                {"ext": "vtt", "url": f"{server.url}/files/{name}.vtt"},
            ]
        },
        "automatic_captions": {},
        "chapters": [
            {"start_time": 0, "end_time": third, "title": "How memory works"},
            {"start_time": third, "end_time": 2 * third, "title": "Why we sleep"},
            {"start_time": 2 * third, "end_time": seconds, "title": "Paying attention"},
        ],
    }
    path = directory / f"{name}.info.json"
    path.write_text(json.dumps(info))
    return path
