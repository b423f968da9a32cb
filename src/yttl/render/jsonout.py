"""The JSON document of DESIGN §5; the Markdown and HTML renderers read the same view."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from yttl.render.links import timestamp_url

if TYPE_CHECKING:
    from yttl.models import RunResult

__all__ = [
    "SCHEMA_VERSION",
    "first_sentence",
    "result_to_dict",
    "section_slides",
    "slides_folder",
    "to_json",
]

SCHEMA_VERSION = 1


_SENTENCE = re.compile(r"(?<=[.!?。！？])\s")


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of a summary, for a table of contents."""
    sentence = _SENTENCE.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "…"


def slides_folder(video_id: str) -> str:
    """Where a video's slide images go, beside its outputs: ``ID.slides``."""
    from yttl.render import output_stem

    return f"{output_stem(video_id)}.slides"


def section_slides(view: Mapping[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Each section's slides, (hour, index) -> those that begin in it, from a JSON view."""
    found: dict[tuple[int, int], list[dict[str, Any]]] = {}
    sections = [
        ((h["index"], s["index"]), s["start"], s["end"])
        for h in view.get("hours", [])
        for s in h.get("sections", [])
    ]
    for slide in view.get("slides") or []:
        key = next((k for k, start, end in sections if start <= slide["start"] < end), None)
        if key is None and sections:  # past the last section's end: a rounded duration
            key = sections[-1][0]
        if key is not None:
            found.setdefault(key, []).append(slide)
    return found


def result_to_dict(result: RunResult) -> dict[str, Any]:
    video = result.video
    hours = []
    for hour in result.hours:
        sections = []
        for item in hour.sections:
            section: dict[str, Any] = {
                "index": item.section.index,
                "start": item.section.start,
                "end": item.section.end,
                "url": timestamp_url(video, item.section.start),
            }
            if item.section.title is not None:
                section["title"] = item.section.title
            else:  # fixed sections: the chapters they fall in
                start, end = item.section.start, item.section.end
                chapters = [
                    c.title for c in video.chapters if c.title and c.start < end and c.end > start
                ]
                if chapters:
                    section["chapters"] = chapters
            section["summary"] = item.summary
            section["status"] = item.status
            if item.error:
                section["error"] = item.error
            sections.append(section)
        hours.append(
            {
                "index": hour.index,
                "start": hour.start,
                "end": hour.end,
                "url": timestamp_url(video, hour.start),
                "summary": hour.summary,
                "status": hour.status,
                "missing_sections": list(hour.missing),
                "sections": sections,
            }
        )
    return {
        "schema": SCHEMA_VERSION,
        "video": {
            "id": video.id,
            "title": video.title,
            "url": video.url,
            "duration": video.duration,
            "extractor": video.extractor,
            "source": video.source,
            **({"channel": video.channel} if video.channel else {}),
            **({"upload_date": video.upload_date} if video.upload_date else {}),
        },
        "transcript": {
            "source": result.transcript.source,
            "language": result.transcript.language,
            "segments": len(result.transcript.segments),
        },
        "summarizer": {
            "provider": result.provider,
            "model": result.model,
            "prompt_version": result.prompt_version,
            "summary_language": result.summary_language,
        },
        "hours": hours,
        **({"summary": result.summary} if result.summary else {}),
        **(
            {
                "slides": [
                    {
                        "start": slide.start,
                        "end": slide.end,
                        "image": f"{slides_folder(video.id)}/{slide.name}",
                        "text": slide.text,
                        "url": timestamp_url(video, slide.start),
                    }
                    for slide in result.slides
                ]
            }
            if result.slides is not None
            else {}
        ),
        "failures": [
            {"where": f.where, "category": f.category, "message": f.message, "attempts": f.attempts}
            for f in result.failures
        ],
        "stats": result.stats,
    }


def to_json(result: RunResult) -> str:
    return json.dumps(result_to_dict(result), indent=2, ensure_ascii=False) + "\n"
