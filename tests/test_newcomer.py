"""A newcomer's first hour (issue 29): a typo is not a batch, help speaks plainly, an
offline machine gets one clean line with a next step, MCP errors speak of tools, search
shows ids, ``ask`` calls no model for what the library does not hold, counts agree."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.library import Library
from yttl.models import TranscriptSegment


def _openai(server: LoopbackServer) -> list[str]:
    return ["-lp", "openai", "-ou", server.openai_base_url, "--no-open"]


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _seed(path: Path) -> None:
    """A library of one talk on sleep, as a run would record it."""
    document = {
        "video": {
            "id": "sleeptalk01",
            "title": "Why we sleep",
            "url": "https://www.youtube.com/watch?v=sleeptalk01",
        },
        "hours": [
            {
                "index": 0,
                "start": 0.0,
                "end": 600.0,
                "summary": "",
                "sections": [
                    {
                        "index": 0,
                        "start": 0.0,
                        "end": 300.0,
                        "status": "ok",
                        "summary": "The talk is about what sleep is and what it does.",
                        "url": "https://www.youtube.com/watch?v=sleeptalk01&t=0",
                    },
                    {
                        "index": 1,
                        "start": 300.0,
                        "end": 600.0,
                        "status": "ok",
                        "summary": "Deep sleep is when the brain replays the day.",
                        "url": "https://www.youtube.com/watch?v=sleeptalk01&t=300",
                    },
                ],
            }
        ],
    }
    segments = [
        TranscriptSegment(10, 20, "this is the talk about sleep"),
        TranscriptSegment(320, 330, "the brain replays what it learned"),
    ]
    Library(path).record_document(document, segments)


# 1. a typo is a usage error, a bare word an input error, before any work


def test_a_mistyped_command_is_a_usage_error_that_names_the_command(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result = run_yttl(["serch", "sleep", "--no-open"], clean_env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = _lines(result.stderr)
    assert lines[0] == "yttl: error: unknown command 'serch'", result.stderr
    assert "did you mean `yttl search`?" in lines[1] and len(lines) == 2
    assert list(tmp_path.iterdir()) == []  # no out/, no index


def test_a_bare_word_is_one_input_error_before_any_work(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    clean_env["HF_HUB_OFFLINE"] = "1"  # no model is fetched for it either
    result = run_yttl(["sleep", "memory", "-o", str(tmp_path / "o")], clean_env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = _lines(result.stderr)
    assert lines[0] == "yttl: error: 'sleep' is not a URL, a file or an info.json", lines
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


# 2. defaults in plain words


def test_help_says_every_default_in_plain_words(clean_env: dict[str, str]) -> None:
    clean_env["COLUMNS"] = "300"  # one line an option
    helps = {"yttl": run_yttl(["--help"], clean_env).stdout}
    for command in ("search", "list", "show", "ask", "library", "config", "mcp", "serve"):
        helps[command] = run_yttl([command, "--help"], clean_env).stdout
    for command, text in helps.items():
        assert text, command
        odd = re.findall(r"default:? (?:True|False|None)\b", text)
        assert odd == [], f"yttl {command} --help: {odd}"
    lines = {
        line.split()[0].rstrip(","): line
        for line in helps["yttl"].splitlines()
        if line.strip().startswith("--")
    }
    assert "cache is on by default" in lines["--no-cache"]
    assert "library is on by default" in lines["--no-library"]
    assert "overview is on by default" in lines["--no-overview"]
    assert "(on by default)" in lines["--vad"]
    assert "(default: 10)" in helps["search"]
    chat = run_yttl(["chat", "--help"], clean_env).stdout  # every option says what it is
    for words in (
        "config file",
        "model of the openai provider",
        "default: the library's",
        "details and tracebacks",
    ):
        assert words in chat, (words, chat)


# 3. and 4. offline: one clean line, with a next step


def test_an_unreachable_embedding_hub_is_one_clean_line(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    clean_env.update(
        YTTL_EMBED="true", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf")
    )
    info = synthetic_video(server, tmp_path, seconds=300)
    result = run_yttl(
        [str(info), *_openai(server), "-o", str(tmp_path / "o"), "-f", "json"], clean_env
    )
    assert result.returncode == 0, result.stderr
    said = [
        line
        for line in result.stderr.splitlines()
        if "embed" in line and not line.startswith("wrote")
    ]
    assert len(said) == 1, result.stderr
    assert said[0].startswith("yttl: warning: not embedded, so search is by words only: ")
    assert "offline?" in said[0] and "--no-embed" in said[0]
    assert not re.search(r"\w*(Error|error)\b", said[0]), said[0]  # no exception's class name
    assert all(line == line.rstrip() for line in result.stderr.splitlines()), result.stderr


def test_a_transcript_only_run_says_nothing_of_embedding(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Text alone was asked for: no model download, no line about it offline; the video is
    still recorded, and ``yttl library reindex`` embeds it when the user wants."""
    clean_env.update(
        YTTL_EMBED="true", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf")
    )
    info = synthetic_video(server, tmp_path, seconds=300)
    out = tmp_path / "o"
    result = run_yttl([str(info), "--transcript-only", "-o", str(out), "-f", "txt"], clean_env)
    assert result.returncode == 0, result.stderr
    assert "embed" not in result.stderr, result.stderr
    assert list(out.glob("*.txt")) and server.state.calls == []


def _tone(path: Path, seconds: float) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(int(seconds * 16000)) / 5) * 3000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def test_an_unreachable_video_site_is_one_line_with_a_next_step(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result = run_yttl(
        ["http://127.0.0.1:9/watch?v=abc", "--transcript-only", "--no-open", "-o", str(tmp_path)],
        clean_env,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == "yttl: error: cannot reach the video site: connection refused", lines
    assert "check the connection" in lines[1]


def test_a_whisper_model_that_cannot_be_downloaded_is_one_line_with_a_next_step(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = tmp_path / "talk.flac"
    _tone(media, 5)
    clean_env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = run_yttl(
        [
            str(media),
            "--transcript-only",
            "-lwm",
            "tiny",
            "--no-open",
            "-o",
            str(tmp_path / "o"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        clean_env,
    )
    assert result.returncode == 1, result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("yttl: error: cannot download the whisper model 'tiny'")
    assert "--local-whisper-model DIR" in lines[1]
    unknown = run_yttl(
        [
            str(media),
            "--transcript-only",
            "-lwm",
            "tiny.xx",
            "--no-open",
            "-o",
            str(tmp_path / "o"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        clean_env,
    )
    assert unknown.returncode == 2, unknown.stderr  # a name no one knows: an input error
    assert _lines(unknown.stderr)[0] == "yttl: error: no whisper model 'tiny.xx'", unknown.stderr


# 5. MCP errors speak of tools, in one line


def test_mcp_errors_name_tools_and_a_missing_argument_is_one_plain_line(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    library = tmp_path / "library.sqlite"
    _seed(library)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "yttl", "mcp", "--library-path", str(library)],
        env=clean_env,
    )
    calls = {
        "unknown": ("get_summary", {"video_id": "nope"}),
        "missing": ("get_summary", {}),
        "wrong type": ("search", {"query": "sleep", "limit": "many"}),
        "empty question": ("ask", {}),
    }

    async def main() -> dict[str, Any]:
        with (tmp_path / "stderr.txt").open("w") as errors:  # the server's stderr
            async with Client(stdio_client(params, errlog=errors)) as client:
                return {
                    name: await client.call_tool(tool, args) for name, (tool, args) in calls.items()
                }

    results = asyncio.run(main())
    texts = {
        name: "".join(getattr(c, "text", "") for c in r.content) for name, r in results.items()
    }
    assert all(r.is_error for r in results.values()), texts
    assert "list_videos" in texts["unknown"] and "yttl list" not in texts["unknown"]
    for name, text in texts.items():
        assert "\n" not in text.strip() and "pydantic" not in text, (name, text)
        assert "validation error" not in text and "Arguments" not in text, (name, text)
    assert texts["missing"] == "get_summary: video_id is missing", texts["missing"]
    assert texts["empty question"] == "ask: question is missing", texts["empty question"]
    assert "limit" in texts["wrong type"] and "integer" in texts["wrong type"]
    said = (tmp_path / "stderr.txt").read_text()
    assert "Tool 'get_summary' failed" not in said, said  # the SDK's INFO lines: only with -v


# 6. the search table has the video's id


def test_the_search_table_on_a_terminal_shows_the_video_id(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = tmp_path / "library.sqlite"
    _seed(library)
    clean_env.update(COLUMNS="160", LINES="50", TERM="xterm")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "yttl", "search", "brain", "--library-path", str(library)],
        env=clean_env,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's far end closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.decode())
    header = next(line for line in text.splitlines() if "snippet" in line)
    assert re.search(r"\bid\b", header), text
    assert "sleeptalk01" in text, text


# 7. ask: nothing that matches the question's subject, no call


def test_ask_makes_no_call_when_only_common_words_match(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    library = tmp_path / "library.sqlite"
    _seed(library)
    base = ["--library-path", str(library), "-lp", "openai", "-ou", server.openai_base_url]
    absent = run_yttl(
        ["ask", "--all", "what is the capital of Mongolia?", *base, "--json"], clean_env
    )
    assert absent.returncode == 0, absent.stderr
    answer = json.loads(absent.stdout)
    assert answer["found"] is False and answer["citations"] == []
    assert answer["answer"].startswith("The library does not seem to say: no part of it")
    assert server.state.calls == []  # the model was never asked
    present = run_yttl(["ask", "sleeptalk01", "what is deep sleep for?", *base], clean_env)
    assert present.returncode == 0, present.stderr
    assert len(server.state.calls) == 1  # a question the talk bears on is asked


# 8. counts agree with their nouns


def test_one_llm_call_is_said_in_the_singular(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, seconds=240)  # one section, no hour call
    result = run_yttl(
        [str(info), *_openai(server), "-o", str(tmp_path / "o"), "-f", "json"], clean_env
    )
    assert result.returncode == 0, result.stderr
    assert len(server.state.calls) == 1
    assert "1 LLM call in" in result.stderr and "1 LLM calls" not in result.stderr
    from yttl.messages import count_of

    assert [count_of(n, "video") for n in (0, 1, 2)] == ["0 videos", "1 video", "2 videos"]
