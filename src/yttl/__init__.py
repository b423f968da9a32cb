"""yttl: a video in, a time-stamped hierarchical summary out.

import asyncio, yttl
settings, _ = yttl.load_settings({"llm_provider": "openai"})
result = asyncio.run(yttl.process_video("talk.info.json", settings))
print(yttl.render(result, "md"))

Names are imported on first use, so that ``yttl --version`` or ``yttl search`` do not
pay for the stages (the openai SDK, faster-whisper, yt-dlp) they never run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from yttl._version import __version__

if TYPE_CHECKING:  # the names, for type checkers; imported on first use at run time
    from yttl.batch import VideoOutcome as VideoOutcome
    from yttl.batch import run_batch as run_batch
    from yttl.config import Settings as Settings
    from yttl.config import load_settings as load_settings
    from yttl.errors import YttlError as YttlError
    from yttl.factory import RunComponents as RunComponents
    from yttl.factory import build_components as build_components
    from yttl.models import HourSummary as HourSummary
    from yttl.models import RunResult as RunResult
    from yttl.models import SectionSummary as SectionSummary
    from yttl.models import Transcript as Transcript
    from yttl.models import VideoInfo as VideoInfo
    from yttl.pipeline import process_video as process_video
    from yttl.render import render as render
    from yttl.render import write_outputs as write_outputs

_WHERE = {
    "HourSummary": "yttl.models",
    "RunComponents": "yttl.factory",
    "RunResult": "yttl.models",
    "SectionSummary": "yttl.models",
    "Settings": "yttl.config",
    "Transcript": "yttl.models",
    "VideoInfo": "yttl.models",
    "VideoOutcome": "yttl.batch",
    "YttlError": "yttl.errors",
    "build_components": "yttl.factory",
    "load_settings": "yttl.config",
    "process_video": "yttl.pipeline",
    "render": "yttl.render",
    "run_batch": "yttl.batch",
    "write_outputs": "yttl.render",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'yttl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
