"""``yttl mcp``: the official SDK's client against the server, in-process and over stdio."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import LoopbackServer
from tests.support.synthetic import EPISODE, episode
from yttl.config import load_settings
from yttl.library import Library
from yttl.models import TranscriptSegment

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from yttl.mcp_server import build_server


def _seed(path: Path) -> None:
    document = {"video": {"id": "talk1", "title": "Memory and sleep",
                          "url": "https://www.youtube.com/watch?v=talk1"},
                "hours": [{"index": 0, "start": 0.0, "end": 600.0, "summary": "", "sections": [
                    {"index": 0, "start": 0.0, "end": 300.0, "summary": "How memories form.",
                     "url": "https://www.youtube.com/watch?v=talk1&t=0", "status": "ok"},
                    {"index": 1, "start": 300.0, "end": 600.0, "summary": "Sleep consolidates.",
                     "url": "https://www.youtube.com/watch?v=talk1&t=300", "status": "ok"}]}]}  # fmt: skip
    segments = [TranscriptSegment(10, 20, "hippocampus replays the day"),
                TranscriptSegment(320, 330, "deep sleep moves it to the cortex")]  # fmt: skip
    Library(path).record_document(document, segments)


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_the_tools_in_process(server: LoopbackServer, tmp_path: Path) -> None:
    library = tmp_path / "library.sqlite"
    _seed(library)
    settings, _ = load_settings({"library_path": str(library), "llm_provider": "openai",
                                 "openai_base_url": server.openai_base_url,
                                 "output_dir": str(tmp_path / "out"), "format": ("json",)},
                                environ={**os.environ, "OPENAI_API_KEY": "sk-loopback-0123456789"})  # fmt: skip
    info = episode(server, tmp_path)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def main() -> dict[str, Any]:
        found: dict[str, Any] = {}
        async with Client(build_server(settings)) as client:
            found["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
            hits = await client.call_tool("search", {"query": "cortex"})
            found["search"] = json.loads(_text(hits))
            found["list"] = json.loads(_text(await client.call_tool("list_videos", {})))
            found["summary"] = _text(await client.call_tool("get_summary", {"video_id": "talk1"}))
            found["transcript"] = _text(await client.call_tool(
                "get_transcript", {"video_id": "talk1", "start": 300, "end": 600}))  # fmt: skip
            made = await client.call_tool("summarize", {"source": str(info)},
                                          progress_callback=on_progress)  # fmt: skip
            found["summarize"] = json.loads(_text(made))
        return found

    found = asyncio.run(main())
    assert found["tools"] == ["ask", "get_summary", "get_transcript", "list_videos", "search",
                              "summarize"]  # fmt: skip
    hit = found["search"][0] if isinstance(found["search"], list) else found["search"]
    assert hit["video_id"] == "talk1" and hit["start"] == 300.0 and "t=300" in hit["url"]
    assert found["summary"].startswith("# Memory and sleep")
    assert "cortex" in found["transcript"] and "hippocampus" not in found["transcript"]
    assert found["summarize"]["status"] == "ok" and found["summarize"]["video_id"] == EPISODE
    assert progress and progress[-1][0] == progress[-1][1]  # done == total at the end
    assert {v["id"] for v in Library(library).videos()} == {"talk1", EPISODE}


def test_the_server_over_stdio_speaks_only_protocol(tmp_path: Path) -> None:
    library = tmp_path / "library.sqlite"
    _seed(library)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTTL_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "yttl", "mcp", "--library-path", str(library)],
                                   env=env)  # fmt: skip

    async def main() -> tuple[list[str], Any]:
        async with Client(params) as client:  # a stray print on stdout would break this
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            return tools, json.loads(_text(await client.call_tool("search", {"query": "memories"})))

    tools, hits = asyncio.run(main())
    assert "search" in tools and "summarize" in tools
    hit = hits[0] if isinstance(hits, list) else hits
    assert hit["video_id"] == "talk1" and hit["start"] == 0.0
