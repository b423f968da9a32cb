"""``yttl mcp`` tells the client why a tool failed, and refuses bad arguments with a
reason; the official SDK's client, in-process, on a library the test writes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from yttl.config import load_settings
from yttl.library import Library

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from mcp.client import Client

from yttl.mcp_server import build_server


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_failures_reach_the_client_with_their_reason(tmp_path: Path) -> None:
    library = tmp_path / "library.sqlite"
    Library(library).record_document({
        "video": {"id": "talk1", "title": "Memory", "url": "https://www.youtube.com/watch?v=talk1"},
        "hours": [{"index": 0, "start": 0.0, "end": 300.0, "summary": "", "sections": [
            {"index": 0, "start": 0.0, "end": 300.0, "summary": "How memories form.",
             "url": "https://www.youtube.com/watch?v=talk1&t=0s", "status": "ok"}]}]})  # fmt: skip
    settings, _ = load_settings({"library_path": str(library), "quiet": True})
    calls = {
        "missing": ("get_summary", {"video_id": "nope"}),
        "format": ("get_summary", {"video_id": "talk1", "format": "xml"}),
        "limit": ("search", {"query": "memory", "limit": -1}),
        "range": ("get_transcript", {"video_id": "talk1", "start": 50, "end": 10}),
        "source": ("summarize", {"source": str(tmp_path / "no-such-talk.mp4")}),
        "fine": ("get_summary", {"video_id": "talk1", "format": "json"}),
    }

    async def main() -> dict[str, Any]:
        async with Client(build_server(settings)) as client:
            return {name: await client.call_tool(tool, args)
                    for name, (tool, args) in calls.items()}  # fmt: skip

    results = asyncio.run(main())
    errors = {name: _text(r) for name, r in results.items() if r.is_error}
    assert set(errors) == {"missing", "format", "limit", "range", "source"}
    assert "no video 'nope' in the library" in errors["missing"]
    assert "format must be one of md, json" in errors["format"]
    assert "limit must be from 1 to 100" in errors["limit"]
    assert "start < end" in errors["range"]
    assert "no such file" in errors["source"]
    assert json.loads(_text(results["fine"]))["video"]["id"] == "talk1"
