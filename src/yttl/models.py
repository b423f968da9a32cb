"""Plain data flowing one way through the pipeline.

source -> ``VideoInfo`` -> ``Transcript`` -> ``SectionPlan`` -> ``HourSummary`` -> render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CaptionTrack",
    "Chapter",
    "Failure",
    "HourSummary",
    "InfoEntry",
    "RunResult",
    "Section",
    "SectionSummary",
    "Slide",
    "Transcript",
    "TranscriptSegment",
    "VideoInfo",
]

SourceKind = Literal["url", "file", "info_json"]
TranscriptSource = Literal["captions", "local_whisper", "api_whisper"]
SectionStatus = Literal["ok", "empty", "failed"]


@dataclass(frozen=True)
class InfoEntry:
    """A video known by its yt-dlp info dict (a playlist's entry, or a URL already read);
    ``kind`` is how it came. A flat entry (``_type: url``) is resolved by its URL."""

    info: Mapping[str, Any]
    kind: SourceKind


@dataclass(frozen=True)
class CaptionTrack:
    """One downloadable (or local) caption file of a video."""

    language: str
    ext: str  # json3, vtt, srt
    url: str | None = None
    path: str | None = None
    automatic: bool = False


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


@dataclass(frozen=True)
class VideoInfo:
    id: str
    title: str
    url: str
    duration: float
    extractor: str
    source: SourceKind
    chapters: tuple[Chapter, ...] = ()
    subtitles: tuple[CaptionTrack, ...] = ()
    automatic_captions: tuple[CaptionTrack, ...] = ()
    media_path: str | None = None  # local file, or None for a site video
    upload_date: str | None = None  # YYYYMMDD, when the site says
    channel: str | None = None
    description: str | None = None
    language: str | None = None  # the spoken language, when the site says

    @property
    def is_youtube(self) -> bool:
        return self.extractor.lower().startswith("youtube")


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    segments: tuple[TranscriptSegment, ...]
    source: TranscriptSource
    language: str | None = None
    track: CaptionTrack | None = None


@dataclass(frozen=True)
class Section:
    """A span of the video to summarize: a 5-minute slot or a chapter."""

    hour: int
    index: int  # within the hour
    start: float
    end: float
    title: str | None = None

    @property
    def label(self) -> str:
        return f"{self.hour + 1}.{self.index + 1}"


@dataclass(frozen=True)
class Failure:
    where: str
    category: str
    message: str
    attempts: int = 1


@dataclass(frozen=True)
class SectionSummary:
    section: Section
    summary: str
    status: SectionStatus
    error: str | None = None


@dataclass(frozen=True)
class HourSummary:
    index: int
    start: float
    end: float
    summary: str
    status: Literal["ok", "failed"]
    sections: tuple[SectionSummary, ...]
    missing: tuple[str, ...] = ()  # labels of failed sections left out of the summary


@dataclass(frozen=True)
class Slide:
    """A picture that held on screen from ``start`` to ``end``: its image (JPEG bytes,
    written beside the outputs) and the text read from it."""

    start: float
    end: float
    text: str
    image: bytes = field(default=b"", repr=False, compare=False)

    @property
    def name(self) -> str:
        """The image's file name, by its start: ``000301.jpg`` for 0:03:01."""
        total = max(int(self.start), 0)
        return f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}.jpg"


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced, and how: the input to every renderer."""

    video: VideoInfo
    transcript: Transcript
    hours: tuple[HourSummary, ...]
    failures: tuple[Failure, ...] = ()
    stats: dict[str, object] = field(default_factory=dict)
    provider: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    summary: str | None = None  # the overview, for videos longer than an hour
    summary_language: str | None = None  # asked for (--summary-language), if any
    slides: tuple[Slide, ...] | None = None  # with --slides: what was found (maybe none)

    @property
    def partial(self) -> bool:
        return bool(self.failures)

    @property
    def interrupted(self) -> bool:
        return any(f.category == "interrupted" for f in self.failures)

    @property
    def summarized(self) -> bool:
        """Whether any section got its summary (a failed run may still carry its work)."""
        return any(s.status == "ok" for h in self.hours for s in h.sections)
