"""Chat threads, kept in the library's file beside the videos they are about: a server
that restarts, a terminal that comes back, and an MCP client that follows up all find
them where they were left."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from yttl.library.store import Library

__all__ = ["ChatMessage", "ChatStore", "ChatThread"]

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn. A question whose answer failed keeps its ``error``; a failed answer is
    never stored."""

    id: int
    role: Role
    content: str
    citations: tuple[dict[str, Any], ...] = ()
    sources: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    created: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.id, "role": self.role, "content": self.content}
        if self.role == "assistant":
            view["citations"] = list(self.citations)
            view["sources"] = list(self.sources)
        if self.error:
            view["error"] = self.error
        return view


@dataclass(frozen=True)
class ChatThread:
    """A thread over some videos of the library (``all_videos``: the whole library)."""

    id: str
    video_ids: tuple[str, ...]
    all_videos: bool
    title: str = ""
    messages: tuple[ChatMessage, ...] = ()
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def scope(self) -> list[str] | None:
        """The videos answers may come from (None: every video of the library)."""
        return None if self.all_videos else list(self.video_ids)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "video_ids": list(self.video_ids),
            "all": self.all_videos,
            "title": self.title,
            "created": self.created,
            "updated": self.updated,
            "messages": [m.as_dict() for m in self.messages],
        }

    def summary(self) -> dict[str, Any]:
        """The thread without its messages, for lists."""
        view = self.as_dict()
        view.pop("messages")
        return view


class ChatStore:
    """The ``chats`` and ``chat_messages`` tables of a library."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def create(self, video_ids: Sequence[str], all_videos: bool) -> ChatThread:
        thread = ChatThread(uuid.uuid4().hex[:12], tuple(video_ids), all_videos)
        with self.library.connect() as db:
            db.execute(
                "INSERT INTO chats (id, created, updated, video_ids, all_videos, title) "
                "VALUES (?,?,?,?,?,?)",
                (
                    thread.id,
                    thread.created,
                    thread.updated,
                    json.dumps(list(video_ids)),
                    int(all_videos),
                    "",
                ),
            )
        return thread

    def get(self, chat_id: str) -> ChatThread | None:
        with self.library.connect() as db:
            row = db.execute(
                "SELECT id, created, updated, video_ids, all_videos, title FROM chats WHERE id = ?",
                (chat_id,),
            ).fetchone()
            if row is None:
                return None
            rows = db.execute(
                "SELECT id, role, content, citations, sources, error, created "
                "FROM chat_messages WHERE chat_id = ? ORDER BY id",
                (chat_id,),
            ).fetchall()
        messages = tuple(
            ChatMessage(
                mid,
                role,
                content,
                tuple(json.loads(cites or "[]")),
                tuple(json.loads(sources or "[]")),
                error,
                created,
            )
            for mid, role, content, cites, sources, error, created in rows
        )
        return _thread(row, messages)

    def threads(self, video_id: str | None = None, limit: int = 100) -> list[ChatThread]:
        """The newest first, without their messages; with ``video_id``, those over it."""
        with self.library.connect() as db:
            rows = db.execute(
                "SELECT id, created, updated, video_ids, all_videos, title "
                "FROM chats ORDER BY updated DESC"
            ).fetchall()
        found = [_thread(row, ()) for row in rows]
        if video_id is not None:
            found = [t for t in found if video_id in t.video_ids]
        return found[:limit]

    def add(
        self,
        chat_id: str,
        role: Role,
        content: str,
        *,
        citations: Sequence[dict[str, Any]] = (),
        sources: Sequence[dict[str, Any]] = (),
        error: str | None = None,
    ) -> int:
        """Append a turn; the first question names the thread."""
        now = time.time()
        with self.library.connect() as db:
            cursor = db.execute(
                "INSERT INTO chat_messages (chat_id, created, role, content, citations, "
                "sources, error) VALUES (?,?,?,?,?,?,?)",
                (
                    chat_id,
                    now,
                    role,
                    content,
                    json.dumps(list(citations)),
                    json.dumps(list(sources)),
                    error,
                ),
            )
            db.execute(
                "UPDATE chats SET updated = ?, title = CASE WHEN title = '' AND ? = "
                "'user' THEN ? ELSE title END WHERE id = ?",
                (now, role, content[:80], chat_id),
            )
        return int(cursor.lastrowid or 0)

    def fail(self, message_id: int, error: str) -> None:
        """Mark a question whose answer failed: the thread says so, and it may be asked
        again."""
        with self.library.connect() as db:
            db.execute("UPDATE chat_messages SET error = ? WHERE id = ?", (error, message_id))

    def delete(self, chat_id: str) -> bool:
        with self.library.connect() as db:
            db.execute("DELETE FROM chat_messages WHERE chat_id = ?", (chat_id,))
            cursor = db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
        return cursor.rowcount > 0


def _thread(row: tuple[Any, ...], messages: tuple[ChatMessage, ...]) -> ChatThread:
    chat_id, created, updated, video_ids, all_videos, title = row
    return ChatThread(
        chat_id, tuple(json.loads(video_ids)), bool(all_videos), title, messages, created, updated
    )
