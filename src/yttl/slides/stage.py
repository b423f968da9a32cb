"""The slides stage: a video's slides found in a thread while its transcript is made.

``find_slides`` is the blocking work (decode, compare, encode, OCR); ``SlideStage`` runs
it off the event loop and lets each section's summary wait only until the frames have
passed that section's end (plus the hold that confirms a slide), so summaries still
start while the video is being read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from yttl.aio import blocking, post
from yttl.cache import ResultsCache, slides_key
from yttl.errors import ProcessingError, RunInterrupted, YttlError
from yttl.models import Slide, VideoInfo
from yttl.slides.detect import ChangeDetector, DetectOptions
from yttl.slides.frames import has_picture, jpeg, png_for_ocr, samples
from yttl.slides.ocr import read_text

__all__ = ["SlideOptions", "SlideStage", "find_slides", "shown_in"]

logger = logging.getLogger(__name__)

Progress = Callable[[float, tuple[Slide, ...]], None]

VERSION = 2  # of how slides are found and read: a change makes cached slides stale


@dataclass(frozen=True)
class SlideOptions:
    program: str  # the OCR engine, found when the run was set up
    detect: DetectOptions = field(default_factory=DetectOptions)
    language: str = "eng"  # of the OCR model


def find_slides(
    path: Path, options: SlideOptions, progress: Progress, stopped: Callable[[], bool]
) -> tuple[Slide, ...] | None:
    """Every slide of the video at ``path``, in order (None: it has no picture);
    ``progress`` hears how far the frames have been read and the slides so far."""
    if not has_picture(path):
        return None
    o = options.detect
    detector = ChangeDetector(o)
    found: list[Slide] = []
    for sample in samples(path, o.fps, o.width, o.height):
        if stopped():
            break
        held = detector.feed(sample.time, sample.thumb)
        if held is not None and (held.new or held.similar):
            text = read_text(options.program, png_for_ocr(sample.frame), options.language)
            _add(found, Slide(held.start, held.end, text, jpeg(sample.frame)), held.similar)
        elif held is not None and found:
            found[-1] = replace(found[-1], end=held.end)
        progress(sample.time, tuple(found))
    return tuple(found)


def _add(found: list[Slide], slide: Slide, similar: bool) -> None:
    """A new slide, unless its text says it is the last one: a ``similar`` picture that
    shows no line the last one lacks (the same slide, a speaker who shifted a little), or
    the last one built up (every line of it, and more: the slide keeps its start and shows
    its fullest state, so no line added late is lost)."""
    if not found:
        found.append(slide)
        return
    last = found[-1]
    lines, before = set(slide.text.splitlines()), set(last.text.splitlines())
    if similar and lines <= before:
        found[-1] = replace(last, end=slide.end)
    elif before and before < lines:
        found[-1] = replace(slide, start=last.start)
    else:
        found.append(slide)


def shown_in(slides: Sequence[Slide], start: float, end: float) -> list[Slide]:
    """The slides on screen at some moment of ``[start, end)``."""
    return [s for s in slides if s.start < end and s.end > start]


class SlideStage:
    """One video's slides, found beside its transcript."""

    def __init__(self, options: SlideOptions, cache: ResultsCache | None = None) -> None:
        self.options = options
        self.cache = cache or ResultsCache(None)
        self._found: tuple[Slide, ...] = ()
        self._reached = 0.0
        self._done = False
        self._changed = asyncio.Event()
        self.error: YttlError | None = None
        self.seconds = 0.0  # spent finding them (in their own thread)

    async def run(
        self, video: VideoInfo, ytdlp: Mapping[str, Any], workdir: Path, stop: asyncio.Event
    ) -> tuple[Slide, ...]:
        """The slides (none if the video has no picture); a failure is kept in ``error``."""
        loop = asyncio.get_running_loop()

        def progress(reached: float, slides: tuple[Slide, ...]) -> None:
            post(loop, self._update, reached, slides)

        def work() -> tuple[Slide, ...] | None:
            started = time.perf_counter()
            try:
                return _work()
            finally:
                post(loop, self._took, time.perf_counter() - started)

        def _work() -> tuple[Slide, ...] | None:
            path = Path(video.media_path) if video.media_path else None
            if path is None:
                from yttl.sources.download import download_video

                path = download_video(video, ytdlp, workdir)
            return find_slides(path, self.options, progress, stop.is_set)

        key = self._key(video)
        cached = await asyncio.to_thread(self.cache.get_slides, key)
        if cached is not None:  # a rerun reads no frame again
            self._found, self._done = cached, True
            self._changed.set()
            _say(video, cached)
            return cached
        try:
            found = await blocking(work, stop=stop, name="yttl-slides")
        except RunInterrupted:  # what was found so far stays, for the partial result
            return self._found
        except Exception as exc:  # the summary goes on without slides, and says why
            if isinstance(exc, YttlError):
                self.error = exc
            else:
                logger.debug("slides of %s", video.id, exc_info=True)
                self.error = ProcessingError(f"slides failed: {type(exc).__name__}: {exc}")
            logger.warning("%s: no slides: %s", video.id, self.error.message)
            return ()
        finally:
            self._done = True
            self._changed.set()
        if found is None:
            logger.warning("%s: no slides: the video has no picture", video.id)
            return ()
        self._found = found
        if not stop.is_set():  # all of them: a stopped run's are found again next time
            await asyncio.to_thread(self.cache.put_slides, key, found)
        _say(video, found)
        return found

    def _key(self, video: VideoInfo) -> str:
        """The video (a local file: as it is now) and every option that shapes its slides."""
        identity: object = video.url
        if video.media_path is not None:
            stat = os.stat(video.media_path)
            identity = (video.media_path, stat.st_size, stat.st_mtime_ns)
        options = {**asdict(self.options.detect), "language": self.options.language}
        return slides_key(str(identity), {**options, "version": VERSION})

    @property
    def found(self) -> tuple[Slide, ...]:
        """The slides found so far (all of them once ``run`` has returned)."""
        return self._found

    def _took(self, seconds: float) -> None:
        self.seconds = seconds

    def _update(self, reached: float, slides: tuple[Slide, ...]) -> None:
        self._reached, self._found = reached, slides
        self._changed.set()

    async def within(self, start: float, end: float) -> list[Slide]:
        """The slides shown in ``[start, end)``, once the frames have passed its end far
        enough for a slide begun in it to be confirmed (or the stage has ended)."""
        needed = end + self.options.detect.hold
        while not self._done and self._reached < needed:
            self._changed.clear()
            await self._changed.wait()
        return shown_in(self._found, start, end)


def _say(video: VideoInfo, found: Sequence[Slide]) -> None:
    """How many slides, and when there are hardly any, why: a picture that held but never
    changed (a still) or one that kept moving (a speaker, a video), told by how much of the
    video the slides cover."""
    count = len(found)
    if count > 1:
        logger.info("%s: %d slides", video.id, count)
        return
    covered = sum(s.end - s.start for s in found)
    if video.duration > 0 and covered < video.duration / 2:
        why = "the picture kept moving (a talking head, a video?)"
    else:
        why = "the picture hardly changes (a talking head or a still picture?)"
    logger.warning("%s: %s: %s", video.id, "no slides" if count == 0 else "one slide", why)
