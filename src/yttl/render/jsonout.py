"""The JSON document of DESIGN §5; the Markdown and HTML renderers read the same view."""

from __future__ import annotations

import json
from typing import Any

from yttl.models import RunResult
from yttl.render.links import timestamp_url

__all__ = ["SCHEMA_VERSION", "result_to_dict", "to_json"]

SCHEMA_VERSION = 1


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
        },
        "hours": hours,
        "failures": [
            {"where": f.where, "category": f.category, "message": f.message, "attempts": f.attempts}
            for f in result.failures
        ],
        "stats": result.stats,
    }


def to_json(result: RunResult) -> str:
    return json.dumps(result_to_dict(result), indent=2, ensure_ascii=False) + "\n"
