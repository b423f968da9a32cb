from __future__ import annotations

import asyncio
import json
import socket

import pytest

from tests.support.server import LoopbackServer
from yttl.config import Profile, Settings
from yttl.endpoints import llm_endpoint
from yttl.errors import (
    AuthError,
    BadResponseError,
    ContextLengthError,
    NetworkError,
    ProviderError,
    ProviderStartingError,
    RateLimitError,
    ServerError,
    UsageError,
)
from yttl.factory import build_llm, max_concurrent_llm
from yttl.llm.base import Message
from yttl.llm.openai_compat import PRESETS, OpenAICompatibleProvider

MESSAGES = [Message("system", "be brief"), Message("user", "Transcript: hello there")]


def _provider(server: LoopbackServer, key: str = "sk-test-0123456789") -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        name="test",
        model="m1",
        base_url=server.openai_base_url,
        api_key=key,
        context_tokens=8000,
        timeout=2,
    )


def _complete(provider: OpenAICompatibleProvider) -> object:
    async def go() -> object:
        try:
            return await provider.complete(MESSAGES, max_tokens=50)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_a_completion_carries_text_and_usage_and_sends_the_model(server: LoopbackServer) -> None:
    server.state.api_key = "sk-test-0123456789"
    completion = _complete(_provider(server))
    assert completion.text.startswith("Summary ")  # type: ignore[attr-defined]
    assert completion.prompt_tokens > 0  # type: ignore[attr-defined]
    call = server.state.calls[0]
    assert call.model == "m1" and call.user == "Transcript: hello there"


def _fault(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return lambda call: (status, headers or {}, body)


@pytest.mark.parametrize(
    ("fault", "error", "check"),
    [
        (_fault(401, b'{"error": {"message": "bad key"}}'), AuthError, None),
        (_fault(403), AuthError, None),
        (
            _fault(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "7"}),
            RateLimitError,
            lambda e: e.retry_after == 7.0,
        ),
        (_fault(500), ServerError, None),
        (_fault(503), ServerError, None),
        (
            _fault(
                400,
                json.dumps(
                    {
                        "error": {
                            "message": "This model's maximum context length is 8192 tokens",
                            "code": "context_length_exceeded",
                        }
                    }
                ).encode(),
            ),
            ContextLengthError,
            None,
        ),
        (_fault(413, b'{"error": {"message": "Request too large"}}'), ContextLengthError, None),
        (
            _fault(200, b"<html>not json</html>", {"Content-Type": "text/html"}),
            BadResponseError,
            None,
        ),
        (
            _fault(
                200,
                json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [],
                    }
                ).encode(),
            ),
            BadResponseError,
            None,
        ),
    ],
)
def test_http_failures_map_to_error_categories(server: LoopbackServer, fault, error, check) -> None:  # type: ignore[no-untyped-def]
    server.state.fault = fault
    with pytest.raises(error) as info:
        _complete(_provider(server))
    if check:
        assert check(info.value)
    assert len(server.state.calls) == 1  # the SDK's own retries are off


def test_a_server_that_is_not_there_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OpenAICompatibleProvider(
        name="t",
        model="m",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        context_tokens=1000,
        timeout=2,
    )
    with pytest.raises(NetworkError):
        _complete(provider)


def test_a_stalled_server_times_out_as_a_network_error(server: LoopbackServer) -> None:
    server.state.latency = lambda call: 3.0
    provider = OpenAICompatibleProvider(
        name="t",
        model="m",
        base_url=server.openai_base_url,
        api_key="k",
        context_tokens=1000,
        timeout=0.5,
    )
    with pytest.raises(NetworkError, match="timed out"):
        _complete(provider)


def test_presets_profiles_and_missing_keys() -> None:
    assert set(PRESETS) == {"openai", "groq", "chatgpt", "huggingchat"}
    assert PRESETS["groq"].max_concurrent < PRESETS["openai"].max_concurrent
    with pytest.raises(UsageError, match="no API key") as info:
        build_llm(Settings(llm_provider="groq"), environ={})
    assert "GROQ_API_KEY" in (info.value.hint or "")
    with pytest.raises(UsageError, match="no API key") as info:
        build_llm(Settings(llm_provider="huggingchat"), environ={})
    assert "HF_TOKEN" in (info.value.hint or "")
    endpoint = llm_endpoint(Settings(llm_provider="huggingchat"), environ={"HF_TOKEN": "hf_x"})
    assert endpoint.base_url.startswith("https://router.huggingface.co")

    settings = Settings(
        llm_provider="mine", profiles={"mine": Profile("mine", "http://127.0.0.1:1/v1", "m7")}
    )
    endpoint = llm_endpoint(settings, environ={"MINE_API_KEY": "k"})
    assert (endpoint.model, endpoint.api_key, endpoint.api_key_env) == ("m7", "k", "MINE_API_KEY")
    with pytest.raises(UsageError, match="unknown LLM provider"):
        llm_endpoint(Settings(llm_provider="nope"), environ={})
    assert max_concurrent_llm(Settings(llm_provider="groq"), environ={}) == 4
    assert max_concurrent_llm(Settings(llm_provider="groq", max_concurrent_llm=9), environ={}) == 9
    assert max_concurrent_llm(Settings(llm_provider="openai", sequential=True), environ={}) == 1


def test_openai_model_and_url_flags_belong_to_the_openai_provider_only() -> None:
    flags = {"openai_model": "gpt-4o-mini", "openai_base_url": "http://127.0.0.1:9/v1"}
    groq = llm_endpoint(Settings(llm_provider="groq", **flags), environ={})  # type: ignore[arg-type]
    assert (groq.model, groq.base_url) == (PRESETS["groq"].model, PRESETS["groq"].base_url)
    openai = llm_endpoint(Settings(llm_provider="openai", **flags), environ={})  # type: ignore[arg-type]
    assert (openai.model, openai.base_url) == ("gpt-4o-mini", "http://127.0.0.1:9/v1")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://192.168.1.20:8000/v1", True),
        ("http://10.0.0.5/v1", True),
        ("http://[::1]:8080/v1", True),
        ("https://api.groq.com/openai/v1", False),
        ("http://8.8.8.8/v1", False),
    ],
)
def test_local_endpoints_need_no_key(url: str, local: bool) -> None:
    from yttl.endpoints import is_local_endpoint

    assert is_local_endpoint(url) is local
    settings = Settings(llm_provider="lab", profiles={"lab": Profile("lab", url, "m")})
    if local:
        assert build_llm(settings, environ={}).name == "lab"
    else:
        with pytest.raises(UsageError, match="no API key"):
            build_llm(settings, environ={})


def test_the_provider_serves_many_concurrent_requests_on_one_client(server: LoopbackServer) -> None:
    server.state.latency = lambda call: 0.2
    provider = _provider(server)

    async def go() -> list[str]:
        try:
            done = await asyncio.gather(
                *(
                    provider.complete([Message("user", f"question {i}")], max_tokens=10)
                    for i in range(12)
                )
            )
            return [c.text for c in done]
        finally:
            await provider.aclose()

    texts = asyncio.run(go())
    assert server.state.max_in_flight == 12
    by_question = {c.user: c.reply for c in server.state.calls}
    assert texts == [by_question[f"question {i}"] for i in range(12)]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            {
                "error": {
                    "message": "context window of the request is too long",
                    "code": "context_length_exceeded",
                }
            },
            "ContextLengthError",
        ),
        (413, {"error": {"message": "payload too large"}}, "ContextLengthError"),
        (
            400,
            {
                "error": {
                    "message": "the request exceeds the available context size",
                    "type": "exceed_context_size_error",
                }
            },
            "ContextLengthError",
        ),
        (400, {"error": {"message": "invalid 'context' field in tools"}}, "RequestRefusedError"),
        (
            404,
            {"error": {"message": "The model `m1` does not exist", "code": "model_not_found"}},
            "ModelNotFoundError",
        ),
        (422, {"error": {"message": "temperature out of range"}}, "RequestRefusedError"),
    ],
)
def test_refusals_are_told_apart_by_status_and_code_not_by_words(
    server: LoopbackServer, status: int, body: dict[str, object], error: str
) -> None:
    server.state.fault = lambda call: (status, {}, json.dumps(body).encode())
    with pytest.raises(ProviderError) as info:
        _complete(_provider(server))
    assert type(info.value).__name__ == error
    assert len(server.state.calls) == 1


def _http_date(seconds_from_now: float) -> str:
    import email.utils
    import time as clock

    return email.utils.formatdate(clock.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("header", "starting", "low", "high"),
    [
        ("3", True, 3.0, 3.0),
        ("date +120", True, 100.0, 121.0),  # a date: the seconds until it
        ("date -600", True, 0.0, 0.0),  # a date gone by: now
        ("nan", False, None, None),  # garbage: no Retry-After at all
        ("inf", False, None, None),
        ("-5", False, None, None),
        ("soon", False, None, None),
    ],
)
def test_a_503_retry_after_is_read_as_seconds_or_a_date_and_garbage_is_ignored(
    server: LoopbackServer, header: str, starting: bool, low: float | None, high: float | None
) -> None:
    """A 503 with Retry-After says the server is starting (DESIGN §7); a date is as good as
    seconds, and a value no clock can reach ("nan" once made the breaker wait its whole
    deadline without one probe, "inf" likewise) is no Retry-After."""
    if header.startswith("date "):
        header = _http_date(float(header.removeprefix("date ")))
    server.state.fault = _fault(503, b'{"error": {"message": "busy"}}', {"Retry-After": header})
    with pytest.raises(ServerError) as info:
        _complete(_provider(server))
    error = info.value
    assert isinstance(error, ProviderStartingError) is starting, error
    if starting:
        assert isinstance(error, ProviderStartingError) and error.retry_after is not None
        assert low is not None and high is not None and low <= error.retry_after <= high


@pytest.mark.parametrize("header", ["nan", "inf", "-5"])
def test_a_429_with_a_garbage_retry_after_has_none(server: LoopbackServer, header: str) -> None:
    server.state.fault = _fault(429, b'{"error": {"message": "slow"}}', {"Retry-After": header})
    with pytest.raises(RateLimitError) as info:
        _complete(_provider(server))
    assert info.value.retry_after is None
