"""``yttl ask``: a question answered from one video of the library, with citations.

The sections that bear on the question (full-text search within the video, any of its
words) and the hour summaries go to the configured LLM through the run's scheduler, as
numbered excerpts with their times. The model must cite the times it used, and say
``NOT_IN_VIDEO`` when the excerpts do not hold the answer; yttl then says so instead of
passing on a guess. Citations become links to the moments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yttl.config import Settings
from yttl.library import Library
from yttl.llm.base import Message
from yttl.render.links import format_clock

__all__ = ["ASK_SYSTEM", "NOT_IN_VIDEO", "Answer", "ask"]

NOT_IN_VIDEO = "NOT_IN_VIDEO"
ASK_SYSTEM = (
    "You answer a question about one video, using only the excerpts given: section "
    "summaries and transcript passages, each with its time as [h:mm:ss] or [mm:ss]. "
    "Cite the time of every excerpt you use, in square brackets, right after the claim. "
    "Do not use anything you know from elsewhere. If the excerpts do not contain the "
    f"answer, reply with exactly {NOT_IN_VIDEO} and nothing else."
)
_CITATION = re.compile(r"\[((?:\d+:)?\d{1,2}:\d{2})\]")
EXCERPTS = 6
EXCERPT_CHARS = 2500


@dataclass(frozen=True)
class Answer:
    text: str
    found: bool
    citations: tuple[tuple[float, str], ...]  # (seconds, url)

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "found": self.found,
                "citations": [{"start": s, "url": u} for s, u in self.citations]}  # fmt: skip


def _seconds(clock: str) -> float:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return float(total)


def _excerpts(library: Library, video_id: str, question: str,
              document: Mapping[str, Any]) -> list[tuple[float, str, str]]:  # fmt: skip
    """(start, url, text) of the sections that bear on the question, in time order."""
    hits = library.search(question, limit=EXCERPTS, video=video_id, any_word=True)
    sections = {s["start"]: s for h in document.get("hours", []) for s in h["sections"]}
    chosen = []
    for hit in hits:
        section = sections.get(hit.start, {})
        passage = " ".join(t.text for t in library.transcript(video_id, hit.start, hit.end))
        text = (section.get("summary") or "") + "\n" + passage[:EXCERPT_CHARS]
        chosen.append((hit.start, hit.url, text.strip()))
    return sorted(chosen)


def prompt(question: str, document: Mapping[str, Any],
           excerpts: list[tuple[float, str, str]]) -> list[Message]:  # fmt: skip
    hours = [
        f"[{format_clock(h['start'])}] (summary of hour {h['index'] + 1}) {h['summary']}"
        for h in document.get("hours", []) if h.get("summary") and len(h["sections"]) > 1
    ]  # fmt: skip
    parts = [f"[{format_clock(start)}] {text}" for start, _, text in excerpts]
    body = "\n\n".join([*hours, *parts])
    title = document["video"].get("title", "")
    question_text = f"Video: {title}\n\nExcerpts:\n{body}\n\nQuestion: {question}"
    return [Message("system", ASK_SYSTEM), Message("user", question_text)]


async def ask(library: Library, video_id: str, question: str, settings: Settings) -> Answer:
    """Answer ``question`` from the video ``video_id`` of ``library``."""
    from yttl.factory import build_components

    document = library.document(video_id)
    excerpts = _excerpts(library, video_id, question, document)
    if not excerpts:  # nothing in the video touches the question: no call, no guess
        return Answer(f"The video does not seem to say: no part of it mentions "
                      f"{question!r}.", False, ())  # fmt: skip
    components = build_components(settings)
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
        return Answer("The video does not seem to say; the closest parts are at "
                      + ", ".join(format_clock(s) for s, _, _ in excerpts) + ".", False,
                      tuple((s, u) for s, u, _ in excerpts))  # fmt: skip
    by_start = {format_clock(s): (s, u) for s, u, _ in excerpts}
    cited = []
    for clock in _CITATION.findall(text):
        start, url = by_start.get(clock, (_seconds(clock), ""))
        if url and (start, url) not in cited:
            cited.append((start, url))
    return Answer(text, True, tuple(cited))
