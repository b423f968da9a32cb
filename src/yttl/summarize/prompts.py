"""Every prompt yttl sends, and the arithmetic that keeps them inside a model's context.

``PROMPT_VERSION`` changes whenever a prompt's wording changes; results are cached under it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from yttl.llm.base import Message

__all__ = [
    "PROMPT_VERSION",
    "ContextBudget",
    "estimate_tokens",
    "group_within",
    "hour_messages",
    "merge_messages",
    "section_messages",
    "split_text",
]

PROMPT_VERSION = "2026-11.1"

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


def section_messages(transcript: str, title: str | None = None) -> list[Message]:
    heading = f"Chapter: {title}\n\n" if title else ""
    return [
        Message("system", SECTION_SYSTEM),
        Message("user", f"{heading}Transcript:\n{transcript}"),
    ]


def merge_messages(summaries: Sequence[str]) -> list[Message]:
    return [Message("system", MERGE_SYSTEM), Message("user", _numbered(summaries))]


def hour_messages(summaries: Sequence[str]) -> list[Message]:
    return [Message("system", HOUR_SYSTEM), Message("user", _numbered(summaries))]
