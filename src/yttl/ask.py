"""``yttl ask``: a question answered from one video of the library, with citations.

The sections that bear on the question (full-text search within the video, any of its
words) and the hour summaries go to the configured LLM through the run's scheduler, as
numbered excerpts with their times. The model must cite the times it used, and say
``NOT_IN_VIDEO`` when the excerpts do not hold the answer; yttl then says so instead of
passing on a guess. Citations become links to the moments.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from yttl.config import Settings
from yttl.library import Library
from yttl.llm.base import Message
from yttl.models import VideoInfo
from yttl.render.links import format_clock, timestamp_url

__all__ = [
    "ASK_SYSTEM",
    "NOT_IN_VIDEO",
    "Answer",
    "Citation",
    "Excerpt",
    "ask",
    "check_citations",
    "seconds_of",
]

NOT_IN_VIDEO = "NOT_IN_VIDEO"
ASK_SYSTEM = (
    "You answer a question about one video, using only the excerpts given: section "
    "summaries and transcript passages, each with its time as [h:mm:ss] or [mm:ss]. "
    "Cite the time of every excerpt you use, in square brackets, right after the claim. "
    "Do not use anything you know from elsewhere. If the excerpts do not contain the "
    f"answer, reply with exactly {NOT_IN_VIDEO} and nothing else."
)
_CITATION = re.compile(r"\[(\d{1,2}(?::\d{1,2}){1,2})\]")
EXCERPTS = 6
EXCERPT_CHARS = 2500


@dataclass(frozen=True)
class Citation:
    """A moment the answer cites: within an excerpt it was given."""

    video_id: str
    start: float
    end: float
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "start": self.start, "end": self.end,
                "url": self.url}  # fmt: skip


@dataclass(frozen=True)
class Excerpt:
    """A section given to the model: its range, its link, its text."""

    start: float
    end: float
    url: str
    text: str


@dataclass(frozen=True)
class Answer:
    text: str
    found: bool
    citations: tuple[Citation, ...]
    dropped: tuple[str, ...] = ()  # citations that matched no excerpt, as written

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "found": self.found,
                "citations": [c.as_dict() for c in self.citations],
                "dropped_citations": list(self.dropped)}  # fmt: skip


def seconds_of(clock: str) -> float:
    """``5:20``, ``05:00`` and ``0:05:00`` alike, in seconds."""
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return float(total)


def _video_of(document: Mapping[str, Any]) -> VideoInfo:
    video = document["video"]
    return VideoInfo(video["id"], video.get("title") or "", video.get("url") or "",
                     float(video.get("duration") or 0), video.get("extractor") or "",
                     video.get("source") or "url")  # fmt: skip


def _excerpts(library: Library, video_id: str, question: str,
              document: Mapping[str, Any]) -> list[Excerpt]:  # fmt: skip
    """The sections that bear on the question, in time order."""
    hits = library.search(question, limit=EXCERPTS, video=video_id, any_word=True)
    sections = {s["start"]: s for h in document.get("hours", []) for s in h["sections"]}
    chosen = []
    for hit in hits:
        section = sections.get(hit.start, {})
        passage = " ".join(t.text for t in library.transcript(video_id, hit.start, hit.end))
        text = (section.get("summary") or "") + "\n" + passage[:EXCERPT_CHARS]
        chosen.append(Excerpt(hit.start, hit.end, hit.url, text.strip()))
    return sorted(chosen, key=lambda e: e.start)


def prompt(question: str, document: Mapping[str, Any],
           excerpts: Sequence[Excerpt]) -> list[Message]:  # fmt: skip
    hours = [
        f"[{format_clock(h['start'])}] (summary of hour {h['index'] + 1}) {h['summary']}"
        for h in document.get("hours", []) if h.get("summary") and len(h["sections"]) > 1
    ]  # fmt: skip
    parts = [f"[{format_clock(e.start)}] {e.text}" for e in excerpts]
    body = "\n\n".join([*hours, *parts])
    title = document["video"].get("title", "")
    question_text = f"Video: {title}\n\nExcerpts:\n{body}\n\nQuestion: {question}"
    return [Message("system", ASK_SYSTEM), Message("user", question_text)]


def check_citations(
    text: str, video: VideoInfo, excerpts: Sequence[Excerpt],
    hours: Sequence[tuple[float, float]] = (),
) -> tuple[list[Citation], list[str]]:  # fmt: skip
    """Every ``[clock]`` the model wrote, matched by seconds against the ranges it was
    given (the excerpts, then the hour summaries): kept with a link to that moment, or
    dropped when it falls in none of them."""
    cited: list[Citation] = []
    dropped: list[str] = []
    for clock in _CITATION.findall(text):
        at = seconds_of(clock)
        given = next(((e.start, e.end) for e in excerpts if e.start <= at < e.end), None)
        given = given or next(((a, b) for a, b in hours if a <= at < b), None)
        if given is None:
            dropped.append(f"[{clock}]")
            continue
        url = next((e.url for e in excerpts if e.start == at), "") or timestamp_url(video, at)
        citation = Citation(video.id, at, given[1], url)
        if citation not in cited:
            cited.append(citation)
    return cited, dropped


async def ask(library: Library, video_id: str, question: str, settings: Settings) -> Answer:
    """Answer ``question`` from the video ``video_id`` of ``library``."""
    from yttl.factory import build_components

    document = library.document(video_id)
    excerpts = _excerpts(library, video_id, question, document)
    if not excerpts:  # nothing in the video touches the question: no call, no guess
        return Answer(f"The video does not seem to say: no part of it mentions "
                      f"{question!r}.", False, ())  # fmt: skip
    video = _video_of(document)
    components = await asyncio.to_thread(build_components, settings)  # may load a model
    llm = components.llm
    assert llm is not None, "ask needs an LLM provider"
    try:
        messages = prompt(question, document, excerpts)
        completion = await components.lane(llm)(
            "ask", lambda: llm.complete(messages, max_tokens=settings.max_output_tokens)
        )
    finally:
        await components.aclose()
    text = completion.text.strip()
    if NOT_IN_VIDEO in text:
        closest = tuple(Citation(video.id, e.start, e.end, e.url) for e in excerpts)
        return Answer("The video does not seem to say; the closest parts are at "
                      + ", ".join(format_clock(e.start) for e in excerpts) + ".", False,
                      closest)  # fmt: skip
    hours = [(float(h["start"]), float(h["end"])) for h in document.get("hours", [])
             if h.get("summary") and len(h["sections"]) > 1]  # fmt: skip
    cited, dropped = check_citations(text, video, excerpts, hours)
    return Answer(text, True, tuple(cited), tuple(dropped))
