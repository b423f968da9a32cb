"""One self-contained HTML page: escaped, linked, readable on a phone."""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2

from yttl._version import __version__
from yttl.models import RunResult
from yttl.render.jsonout import result_to_dict
from yttl.render.links import format_clock, timestamp_url

__all__ = ["environment", "safe_url", "to_html"]

_SAFE_SCHEMES = {"http", "https", "file"}


def safe_url(url: object) -> str:
    """Only web, file and relative links reach an ``href``; ``javascript:`` and friends
    become ``#``."""
    text = str(url)
    scheme = urlsplit(text).scheme.lower()
    return text if scheme in _SAFE_SCHEMES or (not scheme and ":" not in text) else "#"


def environment() -> jinja2.Environment:
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
    template = environment().get_template("summary.html.j2")
    return template.render(
        **view,
        version=__version__,
        language=result.transcript.language or "en",
        clock=format_clock,
        link=lambda seconds: timestamp_url(result.video, seconds),
        player=result.video.source == "file",
        lines=result.transcript.segments if include_transcript else (),
    )
