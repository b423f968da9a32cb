"""Every prompt yttl sends, and the arithmetic that keeps them inside a model's context.

``PROMPT_VERSION`` changes whenever a prompt's wording changes; results are cached under it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from yttl.llm.base import Message

__all__ = [
    "OVERVIEW_SYSTEM",
    "PROMPT_VERSION",
    "SLIDES_PROMPT_VERSION",
    "ContextBudget",
    "PromptContext",
    "estimate_tokens",
    "group_within",
    "hour_messages",
    "merge_messages",
    "overview_messages",
    "section_messages",
    "split_text",
    "version_of",
]

PROMPT_VERSION = "2026-11.2"  # video context, chapter titles, the summary language, overview
SLIDES_PROMPT_VERSION = f"{PROMPT_VERSION}+slides.1"  # a section's prompt with its slides' text
SLIDES_HEADING = (
    "Text of the slides shown in this part (read by OCR; spell names and terms as they are "
    "written there, but summarize what is said):"
)

SECTION_SYSTEM = (
    "You summarize one part of a video's transcript. Write a concise summary of what is "
    "said in it, in 2 to 5 sentences of plain prose, in the transcript's language. State the "
    "content directly; do not refer to 'the speaker', 'the video' or 'this section'. "
    "The transcript may contain recognition errors; do not repeat them."
)
MERGE_SYSTEM = (
    "You are given summaries of consecutive parts of one stretch of a video, in order. "
    "Combine them into one concise summary of 2 to 5 sentences of plain prose. Keep the "
    "most important points; do not mention that there were parts."
)
HOUR_SYSTEM = (
    "You are given the summaries of consecutive sections of one hour of a video, in order. "
    "Write a summary of the whole hour in one paragraph of 3 to 6 sentences of plain prose "
    "that gives its main topics and how they connect. Do not list the sections one by one."
)
OVERVIEW_SYSTEM = (
    "You are given the summaries of every hour of a long video, in order. Write an "
    "overview of the whole video in one paragraph of 4 to 8 sentences of plain prose: what "
    "it is about, its main parts and what it concludes. Do not go hour by hour."
)
DESCRIPTION_CHARS = 400  # of the video's description, in every prompt


@dataclass(frozen=True)
class PromptContext:
    """What every prompt of one video says about it: its title, channel, the first lines
    of its description, and the language the summaries are to be in."""

    title: str = ""
    channel: str | None = None
    description: str | None = None
    language: str | None = None  # None: the transcript's

    def header(self) -> str:
        lines = []
        if self.title:
            lines.append(f"Video: {self.title}" + (f" ({self.channel})" if self.channel else ""))
        if self.description:
            text = " ".join(self.description.split())
            if len(text) > DESCRIPTION_CHARS:
                text = text[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + " …"
            lines.append(f"About the video: {text}")
        return "\n".join(lines) + ("\n\n" if lines else "")

    def system(self, base: str) -> str:
        if self.language is None:
            return base
        base = base.replace(", in the transcript's language", "")
        return f"{base} Write in {self.language}, whatever the language of the text given."


# A conservative average for English and most Latin-script text; code and CJK are denser,
# so budgets keep a margin.
CHARS_PER_TOKEN = 3.5
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


@dataclass(frozen=True)
class ContextBudget:
    """How much text one request may carry for a model with ``context_tokens``."""

    context_tokens: int
    max_output_tokens: int = 512
    margin_tokens: int = 64

    def input_tokens(self, system_prompt: str) -> int:
        available = (
            self.context_tokens
            - self.max_output_tokens
            - estimate_tokens(system_prompt)
            - self.margin_tokens
        )
        return max(available, 64)


def split_text(text: str, max_tokens: int) -> list[str]:
    """Split at sentence ends (else at spaces, else anywhere) into pieces of ``max_tokens``."""
    max_chars = max(int(max_tokens * CHARS_PER_TOKEN), 16)
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    current = ""
    for unit in _units(text, max_chars):
        candidate = f"{current} {unit}" if current else unit
        if len(candidate) <= max_chars:
            current = candidate
        else:
            pieces.append(current)
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, max_chars: int) -> list[str]:
    """Sentences, with any sentence longer than ``max_chars`` cut at spaces or hard."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            units.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            units.append(sentence)
    return units


def group_within(texts: Sequence[str], max_tokens: int) -> list[list[str]]:
    """Consecutive groups of ``texts`` whose joined size stays within ``max_tokens``."""
    groups: list[list[str]] = []
    size = 0
    for text in texts:
        cost = estimate_tokens(text) + 4
        if groups and size + cost <= max_tokens:
            groups[-1].append(text)
            size += cost
        else:
            groups.append([text])
            size = cost
    return groups


def _numbered(summaries: Sequence[str]) -> str:
    return "\n\n".join(f"[{i}] {text}" for i, text in enumerate(summaries, 1))


def section_messages(
    transcript: str,
    title: str | None = None,
    context: PromptContext | None = None,
    chapters: Sequence[str] = (),
    slides: Sequence[str] = (),
) -> list[Message]:
    """``slides``: the text of each slide shown in the part, marked as slide text after
    the transcript (so names and terms are spelled as on the slides)."""
    context = context or PromptContext()
    heading = f"Chapter: {title}\n\n" if title else ""
    if chapters and not title:
        heading = f"Chapters in this part: {'; '.join(chapters)}\n\n"
    shown = [" / ".join(text.splitlines()) for text in slides if text.strip()]
    tail = ""
    if shown:
        tail = f"\n\n{SLIDES_HEADING}\n" + "\n".join(
            f"[slide {i}] {t}" for i, t in enumerate(shown, 1)
        )
    return [
        Message("system", context.system(SECTION_SYSTEM)),
        Message("user", f"{context.header()}{heading}Transcript:\n{transcript}{tail}"),
    ]


def version_of(messages: Sequence[Message]) -> str:
    """The prompt version a request was made under: a prompt with slides has its own, so
    results cached from runs without slides stay valid."""
    if any(SLIDES_HEADING in m.content for m in messages if m.role == "user"):
        return SLIDES_PROMPT_VERSION
    return PROMPT_VERSION


def _summaries_messages(
    system: str, summaries: Sequence[str], context: PromptContext | None
) -> list[Message]:
    context = context or PromptContext()
    return [
        Message("system", context.system(system)),
        Message("user", context.header() + _numbered(summaries)),
    ]


def merge_messages(summaries: Sequence[str], context: PromptContext | None = None) -> list[Message]:
    return _summaries_messages(MERGE_SYSTEM, summaries, context)


def hour_messages(summaries: Sequence[str], context: PromptContext | None = None) -> list[Message]:
    return _summaries_messages(HOUR_SYSTEM, summaries, context)


def overview_messages(
    summaries: Sequence[str], context: PromptContext | None = None
) -> list[Message]:
    return _summaries_messages(OVERVIEW_SYSTEM, summaries, context)
