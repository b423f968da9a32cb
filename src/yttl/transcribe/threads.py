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
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar, cast

from yttl.aio import post

__all__ = ["Prefetch", "prefetch", "stream_in_thread"]

T = TypeVar("T")


class _Done:
    pass


def _delivered(item: Any) -> bool:
    """False at the end of the stream; what the producer raised is raised here."""
    if isinstance(item, _Done):
        return False
    if isinstance(item, BaseException):
        raise item
    return True


class Prefetch(Generic[T]):
    """``items`` run one step ahead in a thread (decoding overlaps transcription), given
    in order by iterating; ``ready()`` says whether the next one is there already.

    The thread is never left behind: ``close()`` (or ``stop``, or the end) ends it and
    joins it."""

    def __init__(self, items: Iterator[T], stop: threading.Event, depth: int = 1) -> None:
        self._box: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = stop
        self._done = threading.Event()  # the consumer has gone: the producer must not wait
        self._thread = threading.Thread(target=self._fill, args=(items,), name="yttl-decode")
        self._thread.start()

    def _offer(self, item: Any) -> bool:
        while not (self._stop.is_set() or self._done.is_set()):
            try:
                self._box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._offer(item):
                    return
            self._offer(_Done())
        except BaseException as exc:
            self._offer(exc)

    def ready(self) -> bool:
        return self._done.is_set() or not self._box.empty() or not self._thread.is_alive()

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        while not self._done.is_set():
            try:
                item = self._box.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set() or (not self._thread.is_alive() and self._box.empty()):
                    break
                continue
            try:
                if _delivered(item):
                    return cast(T, item)
            except BaseException:
                self.close()
                raise
            break
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._done.set()
        self._thread.join()


def prefetch(items: Iterator[T], stop: threading.Event, depth: int = 1) -> Prefetch[T]:
    """Run ``items`` one step ahead in a thread: see ``Prefetch``."""
    return Prefetch(items, stop, depth)


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
