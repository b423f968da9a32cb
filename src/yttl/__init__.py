"""yttl: a video in, a time-stamped hierarchical summary out.

import asyncio, yttl
settings, _ = yttl.load_settings({"llm_provider": "openai"})
result = asyncio.run(yttl.process_video("talk.info.json", settings))
print(yttl.render(result, "md"))
"""

from __future__ import annotations

from yttl._version import __version__
from yttl.batch import VideoOutcome, run_batch
from yttl.config import Settings, load_settings
from yttl.errors import YttlError
from yttl.factory import RunComponents, build_components
from yttl.models import HourSummary, RunResult, SectionSummary, Transcript, VideoInfo
from yttl.pipeline import process_video
from yttl.render import render, write_outputs

__all__ = [
    "HourSummary",
    "RunComponents",
    "RunResult",
    "SectionSummary",
    "Settings",
    "Transcript",
    "VideoInfo",
    "VideoOutcome",
    "YttlError",
    "__version__",
    "build_components",
    "load_settings",
    "process_video",
    "render",
    "run_batch",
    "write_outputs",
]
