"""A small library for the chat tests and benchmark: two talks about sleep experiments run
by different people, and a fake model that answers from what it is sent (a follow-up that
names nothing can only be answered from the earlier turns and the excerpts)."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np

from yttl.library import Library

__all__ = ["FIRST", "FOLLOW_UP", "LAB", "OTHER", "chat_library", "lab_reply", "silent_media"]

LAB = "sleeplab001"
OTHER = "dreamtalk02"
FIRST = "What was the sleep experiment about?"
FOLLOW_UP = "and who ran it?"


def silent_media(path: Path, seconds: int) -> Path:
    """A silent FLAC file of ``seconds``: a local video for the page's player."""
    rate = 8000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, seconds * rate), dtype=np.int16), format="s16", layout="mono"
        )
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def _talk(video_id: str, title: str, url: str, source: str, parts: list[str]) -> dict[str, object]:
    sections = [
        {
            "index": k,
            "start": k * 300.0,
            "end": (k + 1) * 300.0,
            "status": "ok",
            "url": f"{url}#t={k * 300}" if source == "file" else f"{url}&t={k * 300}s",
            "summary": text,
        }
        for k, text in enumerate(parts)
    ]
    return {
        "video": {
            "id": video_id,
            "title": title,
            "duration": len(parts) * 300.0,
            "url": url,
            "extractor": "generic" if source == "file" else "youtube",
            "source": source,
        },
        "hours": [
            {
                "index": 0,
                "start": 0.0,
                "url": sections[0]["url"],
                "status": "ok",
                "end": len(parts) * 300.0,
                "summary": "",
                "sections": sections,
            }
        ],
    }


def chat_library(path: Path, media: Path | None = None) -> Library:
    """The lab talk (a local file when ``media`` is given) and another talk."""
    library = Library(path)
    lab_url = media.as_uri() if media else f"https://www.youtube.com/watch?v={LAB}"
    library.record_document(
        _talk(
            LAB,
            "Inside the sleep lab",
            lab_url,
            "file" if media else "url",
            [
                "Welcome and the plan of the talk about memory.",
                "The sleep experiment tested whether a nap helps memory of word pairs.",
                "The experiment was run by Dr. Maria Lopez with her students at the night lab.",
            ],
        ),
        media=media,  # as the pipeline records the file it read: the page's player plays it
    )
    library.record_document(
        _talk(
            OTHER,
            "Dreams and the brain",
            f"https://www.youtube.com/watch?v={OTHER}",
            "url",
            [
                "A sleep experiment on dreaming, run by Professor Ivan Petrov.",
                "What dreams are made of, and why we forget them.",
            ],
        )
    )
    return library


def lab_reply(messages: list[dict[str, str]]) -> str:
    """Answers as a model would, from what it was sent: who ran it only when the excerpts
    name someone; the first excerpt that does is cited as it was headed (``[10:00]``, or
    ``[Title @ 10:00]`` across videos)."""
    last = messages[-1]["content"] if messages else ""
    question = last.rsplit("Question:", 1)[-1].strip().lower()
    head = r"(\[[^\[\]]*?\d+:\d\d\])[^\[]*?"
    if "who" in question:
        found = re.search(head + r"(Dr\. Maria Lopez|Professor Ivan Petrov)", last)
        if found:
            return f"It was run by {found.group(2)} {found.group(1)}."
        return "NOT_IN_VIDEO"
    found = re.search(head + "nap helps memory", last)
    if found:
        return f"It tested whether a nap helps people remember word pairs {found.group(1)}."
    return "NOT_IN_VIDEO"
