"""The jobs of ``yttl serve``, kept in the library's file: a server that restarts lists
the finished ones and takes up the unfinished ones."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from yttl.library.store import Library

__all__ = ["FINISHED", "JobRecord", "JobStatus", "JobStore"]

JobStatus = Literal["queued", "running", "ok", "partial", "failed", "interrupted", "cancelled"]
FINISHED: tuple[JobStatus, ...] = ("ok", "partial", "failed", "interrupted", "cancelled")


@dataclass
class JobRecord:
    """One job: the sources asked for, the options a client set, and each video's state
    (``video_id``, ``title``, ``status``, ``sections_done``, ``sections_total``, ``page``)."""

    sources: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: JobStatus = "queued"
    videos: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "sources": self.sources,
                "options": self.options, "videos": self.videos, "error": self.error,
                "created": self.created, "updated": self.updated}  # fmt: skip


class JobStore:
    """The ``jobs`` table of a library."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def save(self, job: JobRecord) -> None:
        job.updated = time.time()
        with self.library.connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO jobs (id, created, updated, status, sources, options, "
                "videos, error) VALUES (?,?,?,?,?,?,?,?)",
                (job.id, job.created, job.updated, job.status, json.dumps(job.sources),
                 json.dumps(job.options), json.dumps(job.videos), job.error),
            )  # fmt: skip

    def get(self, job_id: str) -> JobRecord | None:
        with self.library.connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def all(self, limit: int = 200) -> list[JobRecord]:
        """The newest first."""
        with self.library.connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?",
                              (limit,)).fetchall()  # fmt: skip
        return [_record(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        """Queued or running when the server stopped: to be taken up again, oldest first."""
        with self.library.connect() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status IN ('queued', 'running') "
                              "ORDER BY created").fetchall()  # fmt: skip
        return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> JobRecord:
    job_id, created, updated, status, sources, options, videos, error = row
    return JobRecord(json.loads(sources), json.loads(options), job_id, status,
                     json.loads(videos), error, created, updated)  # fmt: skip
