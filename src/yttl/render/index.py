"""The index of a batch: ``index.json`` for scripts, ``index.html`` for people."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yttl._version import __version__
from yttl.messages import count_of
from yttl.render.html import environment

if TYPE_CHECKING:
    from yttl.batch import VideoOutcome

__all__ = ["INDEX_SCHEMA_VERSION", "index_dict", "index_html", "index_json"]

INDEX_SCHEMA_VERSION = 1


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def index_dict(outcomes: Sequence[VideoOutcome], output_dir: Path) -> dict[str, Any]:
    """Every video: id, title, url, status, sections done/total, the error, its outputs."""
    videos = []
    for outcome in outcomes:
        result, entry = outcome.result, outcome.entry
        done, total = outcome.sections
        item: dict[str, Any] = {
            "id": result.video.id if result else None,
            "title": result.video.title if result else entry.label,
            "url": result.video.url
            if result
            else (entry.source if isinstance(entry.source, str) else None),
            "source": entry.source if isinstance(entry.source, str) else None,
            "playlist": entry.playlist,
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "sections_done": done,
            "sections_total": total,
            "outputs": {p.suffix.lstrip("."): _relative(p, output_dir) for p in outcome.outputs},
            "error": None,
        }
        if outcome.error is not None:
            item["error"] = {"category": outcome.error.category, "message": outcome.error.message}
        elif result is not None and result.failures:
            first = result.failures[0]
            item["error"] = {
                "category": first.category,
                "message": f"{count_of(len(result.failures), 'part')} failed; first: "
                f"{first.where}: {first.message}",
            }
        videos.append(item)
    counts: dict[str, int] = {}
    for video in videos:
        counts[video["status"]] = counts.get(video["status"], 0) + 1
    return {"schema": INDEX_SCHEMA_VERSION, "counts": counts, "videos": videos}


def index_json(outcomes: Sequence[VideoOutcome], output_dir: Path) -> str:
    return json.dumps(index_dict(outcomes, output_dir), indent=2, ensure_ascii=False) + "\n"


def index_html(outcomes: Sequence[VideoOutcome], output_dir: Path) -> str:
    view = index_dict(outcomes, output_dir)
    return environment().get_template("index.html.j2").render(**view, version=__version__)
