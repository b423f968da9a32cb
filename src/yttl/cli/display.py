"""Progress on stderr with rich: a line for the batch, a line per active video.

The batch line counts videos done, LLM calls done and planned, and estimates the time
left; each video's line says its phase, its calls, and (while transcribing) the seconds
of audio done. Lines of finished videos go away. Silent when quiet or not on a terminal.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from yttl.batch import VideoOutcome
from yttl.messages import count_of
from yttl.sources.playlists import BatchEntry

__all__ = ["BatchDisplay"]


class _VideoLine:
    """The observer of one video (``yttl.pipeline.RunObserver``)."""

    LABELS: ClassVar[dict[str, str]] = {
        "resolve": "getting video info",
        "captions": "getting the transcript",
        "download": "downloading audio",
        "transcribe": "transcribing and summarizing",
        "summarize": "summarizing",
    }

    def __init__(self, display: BatchDisplay, label: str) -> None:
        self._display = display
        self._label = label if len(label) <= 40 else label[:39] + "…"
        self._phase = "waiting"
        self.calls_total = 0
        self.calls_done = 0
        self._audio_done = 0
        self._audio_total = 0
        self._download_done = 0
        self._download_total = 0
        self.task: TaskID = display.progress.add_task(self._describe(), total=None)

    def _describe(self) -> str:
        text = f"{self._label}: {self._phase}"
        if self._phase.startswith("transcribing") and self._audio_total:
            text += f" ({self._audio_done // 60}/{self._audio_total // 60} min of audio)"
        if self._phase == "downloading audio" and self._download_total:
            text += f" ({self._download_done * 100 // self._download_total} %)"
        return text

    def _refresh(self) -> None:
        self._display.progress.update(
            self.task,
            description=self._describe(),
            total=self.calls_total or None,
            completed=self.calls_done,
        )

    def phase(self, name: str) -> None:
        self._phase = self.LABELS.get(name, name)
        self._refresh()

    def progress(self, kind: str, amount: int) -> None:
        if kind == "total":
            self.calls_total += amount
            self._display.calls(total=amount)
        elif kind == "done":
            self.calls_done += amount
            self._display.calls(done=amount)
        elif kind == "audio_total":
            self._audio_total += amount
        elif kind == "audio_done":
            self._audio_done += amount
        elif kind == "download_total":
            self._download_total += amount
        elif kind == "download_done":
            self._download_done += amount
        self._refresh()


class BatchDisplay:
    """The ``BatchObserver`` the CLI gives ``run_batch``."""

    def __init__(self, console: Console, enabled: bool, videos: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self._videos = videos
        self._done = 0
        self._calls_done = 0
        self._calls_total = 0
        self._lines: dict[int, _VideoLine] = {}
        self._batch: TaskID | None = None
        if videos > 1:
            self._batch = self.progress.add_task(self._describe(), total=videos)

    def _describe(self) -> str:
        return f"{self._done}/{count_of(self._videos, 'video')} · {self._calls_done}/" + count_of(
            self._calls_total, "call"
        )

    def __enter__(self) -> BatchDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def calls(self, *, total: int = 0, done: int = 0) -> None:
        self._calls_total += total
        self._calls_done += done
        if self._batch is not None:
            self.progress.update(self._batch, description=self._describe())

    def video(self, entry: BatchEntry) -> _VideoLine:
        line = _VideoLine(self, entry.label)
        self._lines[id(entry)] = line
        return line

    def finished(self, outcome: VideoOutcome) -> None:
        self._done += 1
        line = self._lines.pop(id(outcome.entry), None)
        if line is not None:
            self.progress.remove_task(line.task)
        if self._batch is not None:
            self.progress.update(self._batch, description=self._describe(), completed=self._done)
