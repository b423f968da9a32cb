"""The summary as Markdown, with every heading's timestamp a link."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from yttl.render.jsonout import first_sentence, result_to_dict, section_slides
from yttl.render.links import format_clock

if TYPE_CHECKING:
    from yttl.models import RunResult

__all__ = ["escape_markdown", "link_target", "markdown_from_view", "to_markdown"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def escape_markdown(text: str) -> str:
    """Summaries and titles are data, not markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def link_target(url: str) -> str:
    """A URL safe inside ``<...>``: spaces, angle brackets and line breaks percent-encoded
    (CommonMark ends a pointy-bracket destination at ``>`` or a line break)."""
    return quote(url, safe="!#$%&'()*+,-./:;=?@[]^_`{|}~")


def _link(start: float, url: str) -> str:
    return f"[{format_clock(start)}](<{link_target(url)}>)"


def _slides(slides: list[dict[str, Any]]) -> list[str]:
    """Each slide: its image, a link to its moment, and its text quoted."""
    lines = []
    for slide in slides:
        clock = format_clock(slide["start"])
        image = f"![Slide at {clock}](<{link_target(slide['image'])}>)"
        lines += [f"[{image}](<{link_target(slide.get('url') or '')}>)", ""]
        text = [escape_markdown(line) for line in str(slide.get("text") or "").splitlines()]
        if text:
            lines += [f"> *Slide {clock}:* " + " / ".join(text), ""]
    return lines


def to_markdown(result: RunResult) -> str:
    return markdown_from_view(result_to_dict(result))


def markdown_from_view(view: Mapping[str, Any]) -> str:
    """The Markdown of a JSON document (a run's, or one kept in the library)."""
    video = view["video"]
    lines = [
        f"# {escape_markdown(video['title'])}",
        "",
        f"<{link_target(video.get('url') or '')}>",
        "",
    ]
    if view.get("summary"):
        lines += ["## Overview", "", escape_markdown(view["summary"]), ""]
    if len(view["hours"]) > 1:
        lines += ["## Contents", ""]
        for hour in view["hours"]:
            gist = (
                f" — {escape_markdown(first_sentence(hour['summary']))}"
                if hour.get("summary")
                else ""
            )
            lines.append(
                f"- [Hour {hour['index'] + 1}](#hour-{hour['index'] + 1}) "
                f"({format_clock(hour['start'])}){gist}"
            )
        lines.append("")
    slides = section_slides(view)
    for hour in view["hours"]:
        lines += [
            f'<a id="hour-{hour["index"] + 1}"></a>',
            "",
            f"## Hour {hour['index'] + 1} ({_link(hour['start'], hour.get('url') or '')})",
            "",
        ]
        if hour.get("status") == "failed":
            lines += ["*Summary failed.*", ""]
        elif hour["summary"] and len(hour["sections"]) > 1:
            lines += [escape_markdown(hour["summary"]), ""]
        if hour.get("missing_sections"):
            lines += [f"*Missing sections: {', '.join(hour['missing_sections'])}.*", ""]
        for section in hour["sections"]:
            title = f" {escape_markdown(section['title'])}" if section.get("title") else ""
            if not title and section.get("chapters"):
                title = f" *{escape_markdown(' · '.join(section['chapters']))}*"
            lines += [f"### {_link(section['start'], section.get('url') or '')}{title}", ""]
            if section["status"] == "failed":
                lines += [f"*Failed: {escape_markdown(section.get('error', 'unknown error'))}*"]
            elif section["status"] == "empty":
                lines += ["*No speech.*"]
            else:
                lines += [escape_markdown(section["summary"])]
            lines.append("")
            lines += _slides(slides.get((hour["index"], section["index"]), []))
    return "\n".join(lines).rstrip() + "\n"
