"""Chat: threads of questions over one video, several, or the whole library.

A thread is ``yttl ask`` that remembers. Each question is answered as ``ask`` answers it
(the same retrieval, the same excerpts, citations checked the same way), with two more
things: the earlier turns, so that "and who ran it?" is read in the light of what came
before, and the answer handed over piece by piece as the model writes it.

- Retrieval sees the question with the earlier questions of the thread, so a follow-up
  that names nothing still finds the sections the thread is about.
- The model sees the earlier turns as turns, newest first within the context budget;
  older ones are cut down to a line that lists their questions. The question itself and
  the excerpts are never dropped.
- The answer streams through the provider's lane: one call for the scheduler (its slot,
  pacing and breaker), however many pieces. A retried attempt starts the answer again
  (``on_restart``). Only a whole answer is stored; a failed one leaves the question marked
  with the error, to be asked again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yttl.ask import (
    ASK_ALL_SYSTEM,
    ASK_SYSTEM,
    NOT_IN_VIDEO,
    Answer,
    Excerpt,
    answer_of,
    prompt,
    prompt_across,
    retrieve,
)
from yttl.config import Settings
from yttl.errors import InputError, YttlError
from yttl.library import Library
from yttl.library.chats import ChatMessage, ChatStore, ChatThread
from yttl.llm.base import Completion, LLMProvider, Message, StreamingProvider, TextSink
from yttl.messages import error_line

if TYPE_CHECKING:
    from yttl.factory import RunComponents
    from yttl.scheduler import CallPolicy

__all__ = [
    "CHAT_NOTE",
    "ChatReply",
    "conversation",
    "open_thread",
    "reply",
    "retrieval_query",
    "streamed_call",
]

CHAT_NOTE = (
    " This is a conversation: the earlier turns come before the question. Read the "
    "question in their light (a name, 'it', 'she' or 'and then?' may refer to them), but "
    "answer only from the excerpts given with the question, citing as above."
)
CHARS_PER_TOKEN = 3  # a cautious estimate: budgets are kept, never exceeded
EARLIER_QUESTIONS = 3  # how many earlier questions join the retrieval query
HISTORY_SHARE = 0.3  # of the prompt's room, at most, for the earlier turns
OLDER_NAMED = 20  # the older turns that do not fit are named by their latest questions


@dataclass(frozen=True)
class ChatReply:
    """A question answered in a thread: the stored turns and the checked answer."""

    thread_id: str
    question_id: int
    message_id: int
    answer: Answer

    def as_dict(self) -> dict[str, Any]:
        """As ``yttl ask --json``, with the thread and the stored answer's id."""
        view = self.answer.as_dict()
        view.update(thread=self.thread_id, message_id=self.message_id)
        return view


def open_thread(store: ChatStore, video_ids: Sequence[str] | None) -> ChatThread:
    """A new thread over ``video_ids`` (None: the whole library); every id must be in the
    library (an unknown one: ``InputError``)."""
    if video_ids is None:
        if store.library.is_empty():
            raise InputError(
                f"the library at {store.library.path} is empty",
                hint="summarize a video, or yttl library import DIR",
            )
        return store.create((), True)
    if not video_ids:
        raise InputError("a thread needs a video, or the whole library")
    for video_id in video_ids:
        store.library.document(video_id)
    return store.create(list(dict.fromkeys(video_ids)), False)


def answered(messages: Sequence[ChatMessage]) -> list[tuple[ChatMessage, ChatMessage]]:
    """The earlier turns that were answered, as (question, answer) pairs, in order."""
    pairs = []
    for question, answer in itertools.pairwise(messages):
        if question.role == "user" and answer.role == "assistant":
            pairs.append((question, answer))
    return pairs


def retrieval_query(question: str, earlier: Sequence[tuple[ChatMessage, ChatMessage]]) -> str:
    """The question with the thread's latest earlier questions: what a follow-up that names
    nothing is about."""
    before = [q.content for q, _ in earlier[-EARLIER_QUESTIONS:]]
    return " ".join([question, *before])


def conversation(
    system: str, final: Message, earlier: Sequence[tuple[ChatMessage, ChatMessage]], room_chars: int
) -> list[Message]:
    """The messages the model is sent: the system text, the earlier turns that fit in
    ``room_chars`` (the newest kept; the older named by their questions in one line),
    then ``final`` (the excerpts and the question), which is always sent."""
    kept: list[tuple[ChatMessage, ChatMessage]] = []
    used = 0
    for question, answer in reversed(earlier):
        size = len(question.content) + len(answer.content)
        if used + size > room_chars:
            break
        kept.insert(0, (question, answer))
        used += size
    older = earlier[: len(earlier) - len(kept)]
    if older:
        asked = "; ".join(q.content[:120] for q, _ in older[-OLDER_NAMED:])
        system += f" Earlier in this conversation, not shown here, the user asked: {asked}"
    turns: list[Message] = []
    for question, answer in kept:
        turns += [Message("user", question.content), Message("assistant", answer.content)]
    return [Message("system", system + CHAT_NOTE), *turns, final]


def _fit_excerpts(excerpts: Sequence[Excerpt], room_chars: int) -> list[Excerpt]:
    """As many excerpts as the room holds, best first; the last one cut short to fit."""
    fitted: list[Excerpt] = []
    for excerpt in excerpts:
        if room_chars <= 200:
            break
        text = excerpt.text[:room_chars]
        fitted.append(dataclasses.replace(excerpt, text=text))
        room_chars -= len(text) + 40
    return fitted or list(excerpts[:1])


class _HeldMarker:
    """Passes the answer on as it streams, except while it could still be the model's
    NOT_IN_VIDEO: that marker is for yttl, and the reader gets yttl's own words instead."""

    def __init__(self, on_text: TextSink, on_restart: Callable[[], None]) -> None:
        self._on_text, self._on_restart = on_text, on_restart
        self._held: list[str] = []
        self._passing = False

    def text(self, piece: str) -> None:
        if self._passing:
            self._on_text(piece)
            return
        self._held.append(piece)
        so_far = "".join(self._held).lstrip()
        if so_far and not (NOT_IN_VIDEO.startswith(so_far) or so_far.startswith(NOT_IN_VIDEO)):
            self.flush()

    def flush(self) -> None:
        """What was held back, once the answer is known not to be the marker."""
        held, self._held, self._passing = "".join(self._held), [], True
        if held:
            self._on_text(held)

    def restart(self) -> None:
        self._held, self._passing = [], False
        self._on_restart()


async def streamed_call(
    lane: CallPolicy,
    llm: LLMProvider,
    messages: Sequence[Message],
    max_tokens: int,
    on_text: TextSink,
    on_restart: Callable[[], None] = lambda: None,
) -> Completion:
    """One call through ``lane`` that hands the answer over as it is written. A provider
    that cannot stream hands it over whole. An attempt that the lane retries after some of
    the answer came first calls ``on_restart``, then starts again."""
    written = False

    def sink(piece: str) -> None:
        nonlocal written
        written = True
        on_text(piece)

    async def attempt() -> Completion:
        nonlocal written
        if written:
            written = False
            on_restart()
        if isinstance(llm, StreamingProvider):
            return await llm.stream(messages, max_tokens=max_tokens, on_text=sink)
        completion = await llm.complete(messages, max_tokens=max_tokens)
        sink(completion.text)
        return completion

    return await lane("chat", attempt)


async def reply(
    store: ChatStore,
    thread: ChatThread,
    question: str,
    settings: Settings,
    *,
    components: RunComponents,
    on_text: TextSink = lambda _: None,
    on_restart: Callable[[], None] = lambda: None,
) -> ChatReply:
    """Answer ``question`` in ``thread``: stored with its answer when it is whole; when it
    fails, the question is stored marked with the error and the error raised."""
    question = question.strip()
    if not question:
        raise InputError("the question is empty")
    library = store.library
    earlier = answered(thread.messages)
    question_id = await asyncio.to_thread(store.add, thread.id, "user", question)
    try:
        answer = await _answer(
            library, thread, question, earlier, settings, components, on_text, on_restart
        )
    except BaseException as exc:  # said in the thread; the question may be asked again
        why = (
            error_line(exc)
            if isinstance(exc, YttlError)
            else "stopped before the answer"
            if isinstance(exc, asyncio.CancelledError)
            else f"internal error ({type(exc).__name__})"
        )
        await asyncio.shield(asyncio.to_thread(store.fail, question_id, why))
        raise
    message_id = await asyncio.to_thread(
        lambda: store.add(
            thread.id,
            "assistant",
            answer.text,
            citations=[c.as_dict() for c in answer.citations],
            sources=[e.as_source() for e in answer.sources],
        )
    )
    return ChatReply(thread.id, question_id, message_id, answer)


async def _answer(
    library: Library,
    thread: ChatThread,
    question: str,
    earlier: Sequence[tuple[ChatMessage, ChatMessage]],
    settings: Settings,
    components: RunComponents,
    on_text: TextSink,
    on_restart: Callable[[], None],
) -> Answer:
    from yttl.embed.indexing import query_vector

    videos = thread.scope
    documents = {v: await asyncio.to_thread(library.document, v) for v in videos or ()}
    query = retrieval_query(question, earlier)
    plan = await query_vector(library, components.embeddings, query, None)
    excerpts = await asyncio.to_thread(retrieve, library, query, videos, documents, plan)
    where = "the video" if videos and len(videos) == 1 else "the library"
    if not excerpts:  # nothing touches the question: no call, no guess
        text = f"{where.capitalize()} does not seem to say: no part of it mentions {question!r}."
        on_text(text)
        return Answer(text, False, ())
    llm = components.llm
    assert llm is not None, "chat needs an LLM provider"
    max_tokens = settings.max_output_tokens
    room = max(llm.context_tokens - max_tokens - 64, 512) * CHARS_PER_TOKEN
    history_room = int(room * HISTORY_SHARE) if earlier else 0
    excerpts = _fit_excerpts(excerpts, room - history_room - len(question) - 400)
    single = documents[videos[0]] if videos and len(videos) == 1 else None
    if single is not None:
        final, system = prompt(question, single, excerpts)[-1], ASK_SYSTEM
    else:
        final, system = prompt_across(question, excerpts)[-1], ASK_ALL_SYSTEM
    messages = conversation(system, final, earlier, history_room)
    held = _HeldMarker(on_text, on_restart)
    completion = await streamed_call(
        components.lane(llm), llm, messages, max_tokens, held.text, held.restart
    )
    if NOT_IN_VIDEO not in completion.text:
        held.flush()
    return answer_of(completion.text, where, excerpts, documents, single)
