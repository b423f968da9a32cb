"""Blocking work off the event loop, in a way Ctrl-C can walk away from.

``asyncio.to_thread`` uses the loop's executor, whose threads ``asyncio.run`` joins at
exit: a yt-dlp call stuck on a slow site would hold the process after Ctrl-C. Here the
work runs in a daemon thread, and the caller stops waiting as soon as ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

from yttl.errors import RunInterrupted

__all__ = ["blocking", "post"]

T = TypeVar("T")


def post(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> bool:
    """``loop.call_soon_threadsafe`` from a worker thread that may outlive the loop: a
    thread left to finish after Ctrl-C drops its news quietly (no "Event loop is closed"
    traceback at exit). False when the loop is gone."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True


async def blocking(
    function: Callable[..., T],
    *args: object,
    stop: asyncio.Event | None = None,
    name: str = "yttl-blocking",
) -> T:
    """``function(*args)`` in a daemon thread; ``RunInterrupted`` as soon as ``stop`` is
    set (the thread is left to finish on its own and its result is dropped)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result = context.run(function, *args)
        except BaseException as exc:  # handed to the awaiting task
            post(loop, settle, None, exc)
        else:
            post(loop, settle, result, None)

    threading.Thread(target=work, name=name, daemon=True).start()
    stopped = asyncio.ensure_future((stop or asyncio.Event()).wait())
    try:
        await asyncio.wait([future, stopped], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        if future.done():
            return future.result()
        raise RunInterrupted()
    finally:
        stopped.cancel()
        if not future.done():
            future.cancel()  # the thread's late result is dropped
