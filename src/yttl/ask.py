"""``yttl ask``: a question answered from the library, with citations that are checked.

The sections that bear on the question (search within one video, several, or the whole
library) and, for one video, its hour summaries go to the configured LLM through the
scheduler, as excerpts with their times (and titles, across videos). The model must cite
the moments it used, and say ``NOT_IN_VIDEO`` when the excerpts do not hold the answer;
yttl then says so instead of passing on a guess. Every citation is matched by video and
seconds against the excerpts it was given: kept with a link to that moment, or dropped
and reported.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yttl.config import Settings
from yttl.embed.plan import SearchPlan
from yttl.errors import InputError
from yttl.library import Library
from yttl.library.words import WORD, has_unspaced
from yttl.llm.base import Message
from yttl.models import VideoInfo
from yttl.render.links import format_clock, timestamp_url

if TYPE_CHECKING:
    from yttl.factory import RunComponents

__all__ = [
    "ASK_SYSTEM",
    "NOT_IN_VIDEO",
    "Answer",
    "Citation",
    "Excerpt",
    "answer_of",
    "ask",
    "check_citations",
    "retrieve",
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
ASK_ALL_SYSTEM = (
    "You answer a question from excerpts of several videos: section summaries and "
    "transcript passages, each headed [Title @ m:ss]. Cite every excerpt you use as "
    "[Title @ m:ss], in square brackets, right after the claim. Do not use anything you "
    "know from elsewhere. If the excerpts do not contain the answer, reply with exactly "
    f"{NOT_IN_VIDEO} and nothing else."
)
# [5:20], [05:00], [0:05:00], and across videos [Some title @ 5:20]
_CITATION = re.compile(r"\[(?:([^\[\]@]{1,200}?)\s*@\s*)?(\d{1,2}(?::\d{1,2}){1,2})\]")
EXCERPTS = 6
EXCERPTS_ACROSS = 8
EXCERPT_CHARS = 2500
# Words that carry no subject: a passage that shares only these with a question (a search
# by any word, or by meaning, still returns it) is no ground for an answer or a call.
_COMMON = (  # English function words, and what any question about a video says
    "a about above after again all also am an and any are as at be because been before "
    "being between both but by can could did do does doing down during each few for from "
    "further had has have having he her here hers him his how i if in into is it its "
    "just me more most my no nor not now of off on once only or other our out over own "
    "said same say says she should so some such than that the their them then there "
    "these they this those through to too under until up very was we were what when "
    "where which while who whom why will with would you your video videos talk tell "
    "explain mention mentioned mentions "
)
STOPWORDS = frozenset(_COMMON.split())


def _stem(word: str) -> str:
    """A word's first five letters: ``sleeping`` and ``sleep``, ``memories`` and
    ``memory`` meet, as the full-text index's stemming lets them."""
    return word[:5]


def subject_words(question: str) -> set[str]:
    """The words of a question that name its subject, stemmed; empty for a question in a
    script written without spaces (every excerpt then counts as a match)."""
    if has_unspaced(question):
        return set()
    words = (w.lower() for w in WORD.findall(question))
    return {_stem(w) for w in words if w not in STOPWORDS and len(w) > 1}


def matches_subject(subject: set[str], excerpts: Sequence[Excerpt]) -> bool:
    """Whether any excerpt holds a word of the question's subject (none to hold: no)."""
    if not subject:
        return bool(excerpts)
    return any(_stem(w.lower()) in subject for e in excerpts for w in WORD.findall(e.text))


@dataclass(frozen=True)
class Citation:
    """A moment the answer cites: within an excerpt it was given."""

    video_id: str
    start: float
    end: float
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {"video_id": self.video_id, "start": self.start, "end": self.end, "url": self.url}


@dataclass(frozen=True)
class Excerpt:
    """A section given to the model: its video, range, link, text and search score."""

    start: float
    end: float
    url: str
    text: str
    video_id: str = ""
    title: str = ""
    score: float = 0.0

    def as_source(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "start": self.start,
            "end": self.end,
            "url": self.url,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Answer:
    text: str
    found: bool
    citations: tuple[Citation, ...]
    dropped: tuple[str, ...] = ()  # citations that matched no excerpt, as written
    sources: tuple[Excerpt, ...] = ()  # what the model was given

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "found": self.found,
            "citations": [c.as_dict() for c in self.citations],
            "sources": [e.as_source() for e in self.sources],
            "dropped_citations": list(self.dropped),
        }


def seconds_of(clock: str) -> float:
    """``5:20``, ``05:00`` and ``0:05:00`` alike, in seconds."""
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return float(total)


def video_of(document: Mapping[str, Any]) -> VideoInfo:
    """Enough of a library document's video to link to its moments."""
    video = document["video"]
    return VideoInfo(
        video["id"],
        video.get("title") or "",
        video.get("url") or "",
        float(video.get("duration") or 0),
        video.get("extractor") or "",
        video.get("source") or "url",
    )


def _excerpts(
    library: Library,
    question: str,
    videos: Sequence[str] | None,
    documents: dict[str, dict[str, Any]],
    plan: SearchPlan | None = None,
) -> list[Excerpt]:
    """The sections that bear on the question, best first, from ``videos`` (all: None);
    by words and, when the library has vectors, by meaning too."""
    plan = plan or SearchPlan("words", "by words")
    mode, vector, model = plan.mode, plan.vector, plan.model
    if videos is not None and len(videos) == 1:
        hits = library.search(
            question,
            limit=EXCERPTS,
            video=videos[0],
            any_word=True,
            mode=mode,
            vector=vector,
            model=model,
        )
    else:
        wanted = set(videos) if videos is not None else None
        found = library.search(
            question,
            limit=EXCERPTS_ACROSS * 4,
            any_word=True,
            mode=mode,
            vector=vector,
            model=model,
        )
        hits = [h for h in found if wanted is None or h.video_id in wanted][:EXCERPTS_ACROSS]
    chosen = []
    for hit in hits:
        document = documents.get(hit.video_id) or library.document(hit.video_id)
        documents[hit.video_id] = document
        sections = {s["start"]: s for h in document.get("hours", []) for s in h["sections"]}
        section = sections.get(hit.start, {})
        passage = " ".join(t.text for t in library.transcript(hit.video_id, hit.start, hit.end))
        text = (section.get("summary") or "") + "\n" + passage[:EXCERPT_CHARS]
        chosen.append(
            Excerpt(hit.start, hit.end, hit.url, text.strip(), hit.video_id, hit.title, hit.score)
        )
    return chosen


retrieve = _excerpts  # the sections that bear on a question: chat retrieves as ask does


def prompt(
    question: str, document: Mapping[str, Any], excerpts: Sequence[Excerpt]
) -> list[Message]:
    """One video: its hour summaries and excerpts in time order, cited by time."""
    hours = [
        f"[{format_clock(h['start'])}] (summary of hour {h['index'] + 1}) {h['summary']}"
        for h in document.get("hours", [])
        if h.get("summary") and len(h["sections"]) > 1
    ]
    parts = [f"[{format_clock(e.start)}] {e.text}" for e in sorted(excerpts, key=lambda e: e.start)]
    body = "\n\n".join([*hours, *parts])
    title = document["video"].get("title", "")
    question_text = f"Video: {title}\n\nExcerpts:\n{body}\n\nQuestion: {question}"
    return [Message("system", ASK_SYSTEM), Message("user", question_text)]


def prompt_across(question: str, excerpts: Sequence[Excerpt]) -> list[Message]:
    """Several videos: each excerpt headed by its video's title and time."""
    body = "\n\n".join(f"[{e.title} @ {format_clock(e.start)}] {e.text}" for e in excerpts)
    question_text = f"Excerpts:\n{body}\n\nQuestion: {question}"
    return [Message("system", ASK_ALL_SYSTEM), Message("user", question_text)]


def check_citations(
    text: str,
    video: VideoInfo | Mapping[str, VideoInfo],
    excerpts: Sequence[Excerpt],
    hours: Sequence[tuple[float, float]] = (),
) -> tuple[list[Citation], list[str]]:
    """Every citation the model wrote, matched by video and seconds against the ranges it
    was given (the excerpts, then one video's hour summaries): kept with a link to that
    moment, or dropped when it falls in none of them."""
    videos = {video.id: video} if isinstance(video, VideoInfo) else dict(video)
    cited: list[Citation] = []
    dropped: list[str] = []
    for title, clock in _CITATION.findall(text):
        at = seconds_of(clock)
        named = title.strip().lower()
        candidates = [
            e
            for e in excerpts
            if e.start <= at < e.end
            and (not named or e.title.strip().lower() == named or len(videos) == 1)
        ]
        if named and not candidates:  # a title shortened or paraphrased: its start will do
            candidates = [
                e
                for e in excerpts
                if e.start <= at < e.end and e.title.strip().lower().startswith(named[:20])
            ]
        match = candidates[0] if candidates else None
        if match is None and len(videos) == 1:
            span = next(((a, b) for a, b in hours if a <= at < b), None)
            if span is not None:
                match = Excerpt(span[0], span[1], "", "", next(iter(videos)))
        if match is None:
            dropped.append(f"[{title.strip() + ' @ ' if title else ''}{clock}]")
            continue
        video_id = match.video_id or next(iter(videos))
        url = match.url if match.start == at and match.url else timestamp_url(videos[video_id], at)
        citation = Citation(video_id, at, match.end, url)
        if citation not in cited:
            cited.append(citation)
    return cited, dropped


async def ask(
    library: Library,
    video_id: str | Sequence[str] | None,
    question: str,
    settings: Settings,
    *,
    components: RunComponents | None = None,
) -> Answer:
    """Answer ``question`` from one video, several, or (None) the whole library.
    ``components`` shared by a long-lived process are used and left open."""
    from yttl.embed.indexing import query_vector
    from yttl.factory import build_components

    videos = [video_id] if isinstance(video_id, str) else list(video_id) if video_id else None
    documents = {v: library.document(v) for v in videos or ()}  # an unknown id: InputError
    if videos is None and library.is_empty():  # said before a model is loaded or fetched
        raise InputError(
            f"the library at {library.path} is empty",
            hint="summarize a video, or yttl library import DIR",
        )
    own = components is None
    if components is None:
        components = await asyncio.to_thread(build_components, settings)  # may load a model
    try:
        plan = await query_vector(library, components.embeddings, question, None)
        excerpts = _excerpts(library, question, videos, documents, plan)
    except BaseException:
        if own:
            await components.aclose()
        raise
    if not matches_subject(subject_words(question), excerpts):
        excerpts = []  # only "what", "is", "the" matched: no ground for a call either
    where = "the video" if videos and len(videos) == 1 else "the library"
    if not excerpts:  # nothing touches the question: no call, no guess
        if own:
            await components.aclose()
        if videos is None and library.is_empty():
            raise InputError(
                f"the library at {library.path} is empty",
                hint="summarize a video, or yttl library import DIR",
            )
        return Answer(
            f"{where.capitalize()} does not seem to say: no part of it mentions {question!r}.",
            False,
            (),
        )
    single = documents[videos[0]] if videos and len(videos) == 1 else None
    llm = components.llm
    assert llm is not None, "ask needs an LLM provider"
    try:
        messages = (
            prompt(question, single, excerpts)
            if single is not None
            else prompt_across(question, excerpts)
        )
        completion = await components.lane(llm)(
            "ask", lambda: llm.complete(messages, max_tokens=settings.max_output_tokens)
        )
    finally:
        if own:
            await components.aclose()
    return answer_of(completion.text, where, excerpts, documents, single)


def answer_of(
    reply: str,
    where: str,
    excerpts: Sequence[Excerpt],
    documents: Mapping[str, Mapping[str, Any]],
    single: Mapping[str, Any] | None,
) -> Answer:
    """The model's reply as an answer (``ask`` and chat alike): ``NOT_IN_VIDEO`` becomes
    the closest parts; otherwise every citation is checked against what it was shown."""
    text = reply.strip()
    sources = tuple(excerpts)
    if NOT_IN_VIDEO in text:
        closest = tuple(Citation(e.video_id, e.start, e.end, e.url) for e in excerpts)
        return Answer(
            f"{where.capitalize()} does not seem to say; the closest parts are at "
            + ", ".join(format_clock(e.start) for e in excerpts)
            + ".",
            False,
            closest,
            (),
            sources,
        )
    by_id = {v: video_of(d) for v, d in documents.items()}  # retrieval added its videos
    hours = [
        (float(h["start"]), float(h["end"]))
        for h in (single or {}).get("hours", [])
        if h.get("summary") and len(h["sections"]) > 1
    ]
    cited, dropped = check_citations(text, by_id, excerpts, hours)
    return Answer(text, True, tuple(cited), tuple(dropped), sources)
