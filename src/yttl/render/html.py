"""One self-contained HTML page: escaped, linked, readable on a phone."""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2

from yttl import __version__
from yttl.models import RunResult
from yttl.render.jsonout import result_to_dict
from yttl.render.links import format_clock, timestamp_url

__all__ = ["safe_url", "to_html"]

_SAFE_SCHEMES = {"http", "https", "file"}


def safe_url(url: object) -> str:
    """Only web and file links reach an ``href``; ``javascript:`` and friends become ``#``."""
    text = str(url)
    return text if urlsplit(text).scheme.lower() in _SAFE_SCHEMES else "#"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("yttl.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    return env


def to_html(result: RunResult, *, include_transcript: bool = True) -> str:
    view = result_to_dict(result)
    template = _environment().get_template("summary.html.j2")
    return template.render(
        **view,
        version=__version__,
        language=result.transcript.language or "en",
        clock=format_clock,
        link=lambda seconds: timestamp_url(result.video, seconds),
        player=result.video.source == "file",
        lines=result.transcript.segments if include_transcript else (),
    )
