"""What the library keeps when a video is recorded again: a record is never made poorer
(DESIGN §3, "What the library promises"). This is the rule's one place.

A record has parts, and each is judged on its own, the newer against the stored:

- **Sections and their summaries** (the document): a complete run (every section
  summarized) always wins, so a newer complete run replaces an older one; otherwise the
  one with more summarized sections wins, the newer on a tie. So a ``--transcript-only``
  run, a failed run or a partial one never replaces summaries with fewer.
- **The transcript** (its segments): the newer wins unless it is empty, as when JSON
  outputs are imported with no srt or vtt beside them. The document's ``transcript``
  note follows the segments kept.
- **Slides**: kept from the stored document when the winning one has none.
- **Outputs**: the newer formats are added to the stored ones still on disk.
- **Vectors** are never deleted here. When what they are made of changed (``changed``),
  the video is marked to be embedded again, and its old vectors serve search by meaning
  until new ones replace them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yttl.library.vectors import windows_of

if TYPE_CHECKING:
    from yttl.models import TranscriptSegment

__all__ = ["Kept", "Stored", "merge", "summaries_rank"]

CARRIED = ("slides",)
"""Parts of a document that a run may not make again: kept when the winner has none."""


@dataclass(frozen=True)
class Stored:
    """A video's record: what is stored, or what a run brings."""

    document: Mapping[str, Any]
    segments: Sequence[TranscriptSegment]
    outputs: Mapping[str, str]  # format -> path


@dataclass(frozen=True)
class Kept:
    """What the library keeps, and whether the video's vectors are out of date."""

    document: dict[str, Any]
    segments: Sequence[TranscriptSegment]
    outputs: dict[str, str]
    changed: bool


def summaries_rank(document: Mapping[str, Any]) -> tuple[int, int]:
    """How much summary a document holds, comparable: complete (2, 0) beats any partial
    (1, sections done), which beats none (0, 0)."""
    sections = [s for h in document.get("hours", []) for s in h.get("sections", [])]
    done = sum(1 for s in sections if s.get("summary") and s.get("status") != "failed")
    if sections and done == len(sections):
        return (2, 0)
    return (1 if done else 0, done)


def merge(old: Stored | None, new: Stored) -> Kept:
    """The record to keep when ``new`` comes for a video the library has as ``old``."""
    if old is None:
        return Kept(dict(new.document), new.segments, dict(new.outputs), changed=True)
    newer_summaries = summaries_rank(new.document) >= summaries_rank(old.document)
    winner, loser = (new, old) if newer_summaries else (old, new)
    segments_from = new if new.segments else old
    document = dict(winner.document)
    for key in CARRIED:
        if not document.get(key) and loser.document.get(key):
            document[key] = loser.document[key]
    if "transcript" in segments_from.document:
        document["transcript"] = segments_from.document["transcript"]
    outputs = {k: v for k, v in old.outputs.items() if Path(v).exists()}
    outputs.update(new.outputs)
    before = windows_of(old.document, old.segments)
    changed = before != windows_of(document, segments_from.segments)
    return Kept(document, segments_from.segments, outputs, changed)
