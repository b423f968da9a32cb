"""Blocking generators run in threads that are always ended and joined.

Decoding runs one chunk ahead of the model (``prefetch``) and the model hands each segment
to the event loop as soon as it exists (``stream_in_thread``); neither thread may outlive
its consumer, since a model still running native code while the interpreter shuts down
crashes it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, TypeVar

from yttl.aio import post

__all__ = ["prefetch", "stream_in_thread"]

T = TypeVar("T")


class _Done:
    pass


_END = object()


def _delivered(item: Any) -> bool:
    """False at the end of the stream; what the producer raised is raised here."""
    if isinstance(item, _Done):
        return False
    if isinstance(item, BaseException):
        raise item
    return True


def prefetch(items: Iterator[T], stop: threading.Event, depth: int = 1) -> Generator[T, None, None]:
    """Run ``items`` ahead in a thread (decoding overlaps transcription): at most ``depth``
    made and not yet taken, counting the one being made, so a chunk is only decoded once
    the one before it is taken and memory holds no more chunks than it must.

    The thread is never left behind: closing this generator (or ``stop``) ends it, and
    it is joined before this generator returns."""
    box: queue.Queue[Any] = queue.Queue()
    room = threading.Semaphore(depth)  # released as the consumer takes an item
    done = threading.Event()  # this consumer has gone: the producer must not wait on it

    def wait_for_room() -> bool:
        while not (stop.is_set() or done.is_set()):
            if room.acquire(timeout=0.1):
                return True
        return False

    def fill() -> None:
        try:
            source = iter(items)
            while wait_for_room():
                item = next(source, _END)
                if item is _END:
                    box.put(_Done())
                    return
                box.put(item)
        except BaseException as exc:
            box.put(exc)

    thread = threading.Thread(target=fill, name="yttl-decode")
    thread.start()
    try:
        while True:
            try:
                item = box.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set() or (not thread.is_alive() and box.empty()):
                    return
                continue
            if not _delivered(item):
                return
            room.release()
            yield item
    finally:
        done.set()
        thread.join()


async def stream_in_thread(
    produce: Iterator[T], stop: threading.Event, name: str = "yttl-worker"
) -> AsyncIterator[T]:
    """Items of a blocking generator, produced in a thread and delivered on the loop.

    Whenever the consumer stops (the end, an error, Ctrl-C), ``stop`` is set and the
    thread is waited for: a model must not still be running native code while the
    interpreter shuts down. The thread is not a daemon, so even a second Ctrl-C that
    cuts this wait short leaves it to be joined at exit."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    finished = asyncio.Event()

    def work() -> None:
        try:
            for item in produce:
                if stop.is_set() or not post(loop, inbox.put_nowait, item):
                    break
            post(loop, inbox.put_nowait, _Done())
        except BaseException as exc:
            post(loop, inbox.put_nowait, exc)
        finally:
            close = getattr(produce, "close", None)
            if close is not None:
                close()  # ends the decoding thread behind it, too
            post(loop, finished.set)

    thread = threading.Thread(target=work, name=name)
    thread.start()
    try:
        while True:
            item = await inbox.get()
            if not _delivered(item):
                return
            yield item
    finally:
        stop.set()
        await finished.wait()
