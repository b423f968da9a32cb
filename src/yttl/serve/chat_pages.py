"""What the pages show of chat: the kept threads over the page's video (or over the whole
library, on the library page) and the one being read."""

from __future__ import annotations

import asyncio
from typing import Any

from yttl.library.chats import ChatStore, ChatThread
from yttl.serve.state import ServerState

__all__ = ["chat_view"]

SHOWN = 20


async def chat_view(state: ServerState, chosen: str | None, video_id: str | None) -> dict[str, Any]:
    """The chat of a page: ``chosen`` is the ``?chat=`` asked for (``new``: none yet;
    absent: the latest thread); ``video_id`` None is the whole library's chat."""
    store = ChatStore(state.library)

    def belongs(thread: ChatThread) -> bool:
        return video_id in thread.video_ids if video_id else thread.all_videos

    def read() -> tuple[list[ChatThread], ChatThread | None]:
        threads = [t for t in store.threads(video_id) if belongs(t)][:SHOWN]
        thread = None
        if chosen and chosen != "new":
            found = store.get(chosen)
            thread = found if found is not None and belongs(found) else None
        elif chosen is None and threads:
            thread = store.get(threads[0].id)
        return threads, thread

    threads, thread = await asyncio.to_thread(read)
    return {
        "threads": threads,
        "thread": thread,
        "video_id": video_id,
        "heading": "Ask this video" if video_id else "Ask the whole library",
        "placeholder": "What did they say about…?" if video_id else "Which talks discuss…?",
    }
