"""One self-contained HTML page: escaped, linked, readable on a phone."""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2

from yttl._version import __version__
from yttl.models import RunResult
from yttl.render.jsonout import first_sentence, result_to_dict, section_slides
from yttl.render.links import format_clock, timestamp_url

__all__ = ["environment", "language_code", "safe_url", "to_html"]

_LANGUAGES = {
    "arabic": "ar",
    "chinese": "zh",
    "czech": "cs",
    "danish": "da",
    "dutch": "nl",
    "english": "en",
    "finnish": "fi",
    "french": "fr",
    "german": "de",
    "greek": "el",
    "hebrew": "he",
    "hindi": "hi",
    "hungarian": "hu",
    "indonesian": "id",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "norwegian": "no",
    "persian": "fa",
    "polish": "pl",
    "portuguese": "pt",
    "romanian": "ro",
    "russian": "ru",
    "spanish": "es",
    "swedish": "sv",
    "thai": "th",
    "turkish": "tr",
    "ukrainian": "uk",
    "vietnamese": "vi",
}


def language_code(language: str | None) -> str | None:
    """``German`` or ``de`` -> ``de`` (for ``<html lang>``); unknown names give None."""
    if not language:
        return None
    text = language.strip()
    if len(text) <= 3 or ("-" in text and len(text) <= 8):
        return text.lower()
    return _LANGUAGES.get(text.lower())


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
        language=language_code(result.summary_language) or result.transcript.language or "en",
        first_sentence=first_sentence,
        clock=format_clock,
        link=lambda seconds: timestamp_url(result.video, seconds),
        player=result.video.source == "file",
        lines=result.transcript.segments if include_transcript else (),
        by_section=section_slides(view),
    )
