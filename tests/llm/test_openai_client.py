"""Contract tests of the OpenAI-compatible client, through a real socket to the fake server."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from typing import Any

import httpx
import pytest

from leadline.errors import ConfigError, LLMConnectionError, LLMResponseError
from leadline.llm.base import GenerationParams, LLMClient, Message
from leadline.llm.openai_client import OpenAICompatibleClient, api_root
from leadline.llm.tokens import estimate_tokens
from leadline.testing.fake_openai_server import FakeOpenAIServer, ScriptedReply, serve_fake_openai

pytestmark = pytest.mark.anyio

HELLO = [Message("system", "Answer briefly."), Message("user", "What is the capital of France?")]
SCHEMA = {
    "title": "Answer",
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fast_client(server: FakeOpenAIServer, **kwargs: Any) -> OpenAICompatibleClient:
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("timeout_s", 10.0)
    return OpenAICompatibleClient(server.url, **kwargs)


def assert_no_guided_fields(server: FakeOpenAIServer) -> None:
    for request in server.requests:
        if isinstance(request.body, dict):
            assert not [k for k in request.body if k.startswith("guided_")], request.body


async def test_chat_sends_sampling_fields_and_reads_the_answer() -> None:
    with serve_fake_openai(flavor="vllm", replies=["Paris"], model="qwen-test") as server:
        async with fast_client(server) as client:
            params = GenerationParams(max_tokens=32, temperature=0.3, stop=("\n\n",), seed=7)
            result = await client.chat(HELLO, params)
    assert result.text == "Paris"
    assert result.finish_reason == "stop"
    assert result.model == "qwen-test"
    assert result.reasoning is None
    assert result.choices[0].logprobs is None
    # The fake counts whitespace tokens: 3 + 6 prompt words, 1 completion word.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (8, 1)
    [request] = server.generation_requests()
    assert request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "qwen-test",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 32,
        "temperature": 0.3,
        "stop": ["\n\n"],
        "seed": 7,
    }


async def test_model_and_flavor_are_detected_once_and_cached() -> None:
    with serve_fake_openai(flavor="vllm", model="served-model") as server:
        async with fast_client(server) as client:
            assert client.model_name == ""
            assert isinstance(client, LLMClient)
            info = await client.probe()
            for _ in range(3):
                await client.chat(HELLO, GenerationParams())
    assert (info.flavor, info.model) == ("vllm", "served-model")
    assert client.model_name == "served-model"
    assert [r.path for r in server.requests].count("/v1/models") == 1
    assert all(r.body["model"] == "served-model" for r in server.generation_requests())


@pytest.mark.parametrize(
    ("flavor", "owned_by", "expected", "probed"),
    [
        ("vllm", None, "vllm", []),
        ("llamacpp", None, "llamacpp", []),
        ("llamacpp", "proxy", "llamacpp", ["/props"]),
        ("vllm", "proxy", "vllm", ["/props", "/version"]),
        ("openai", None, "openai", ["/props", "/version"]),
    ],
)
async def test_flavor_detection(flavor: Any, owned_by: str | None, expected: str, probed: list[str]) -> None:
    with serve_fake_openai(flavor=flavor, owned_by=owned_by) as server:
        async with fast_client(server) as client:
            info = await client.probe()
    assert info.flavor == expected
    assert [r.path for r in server.requests] == ["/v1/models", *probed]


async def test_explicit_flavor_and_model_skip_detection() -> None:
    with serve_fake_openai(flavor="llamacpp") as server:
        async with fast_client(server, flavor="llamacpp", model="mine") as client:
            await client.chat(HELLO, GenerationParams())
    assert [r.path for r in server.requests] == ["/v1/chat/completions"]
    assert server.requests[0].body["model"] == "mine"


@pytest.mark.parametrize(
    ("flavor", "field"),
    [("vllm", "reasoning"), ("vllm", "reasoning_content"), ("llamacpp", "reasoning_content")],
)
async def test_reasoning_is_read_from_either_field(flavor: Any, field: str) -> None:
    reply = ScriptedReply("42", reasoning="six times seven")
    with serve_fake_openai(flavor=flavor, replies=[reply], reasoning_field=field) as server:
        async with fast_client(server) as client:
            result = await client.chat(HELLO, GenerationParams())
    assert result.text == "42"
    assert result.reasoning == "six times seven"
    assert result.usage.completion_tokens == 4


async def test_thinking_token_budget_is_a_top_level_field_for_vllm_only() -> None:
    params = GenerationParams(thinking_token_budget=64)
    with serve_fake_openai(flavor="vllm") as vllm:
        async with fast_client(vllm) as client:
            await client.chat(HELLO, params)
    assert vllm.generation_requests()[0].body["thinking_token_budget"] == 64
    assert "chat_template_kwargs" not in vllm.generation_requests()[0].body
    for flavor in ("llamacpp", "openai"):
        with serve_fake_openai(flavor=flavor) as other:
            async with fast_client(other) as client:
                await client.chat(HELLO, params)
        assert "thinking_token_budget" not in other.generation_requests()[0].body


async def test_structured_output_field_per_flavor() -> None:
    params = GenerationParams(json_schema=SCHEMA)
    bodies: dict[str, dict[str, Any]] = {}
    for flavor in ("vllm", "llamacpp", "openai"):
        with serve_fake_openai(flavor=flavor, replies=['{"city": "Paris"}', '{"city": "Paris"}']) as server:
            async with fast_client(server) as client:
                chat = await client.chat(HELLO, params)
                done = await client.complete("Capital of France as JSON:", params)
            assert chat.text == done.text == '{"city": "Paris"}'
            assert_no_guided_fields(server)
            chat_body = server.generation_requests("/v1/chat/completions")[0].body
            bodies[flavor] = chat_body
            completion_body = server.generation_requests("/v1/completions")[0].body
            if flavor == "llamacpp":
                assert completion_body["json_schema"] == SCHEMA
                assert "response_format" not in completion_body
            else:
                assert {
                    k: completion_body[k] for k in ("structured_outputs", "response_format") if k in chat_body
                } == {k: chat_body[k] for k in ("structured_outputs", "response_format") if k in chat_body}
    assert bodies["vllm"]["structured_outputs"] == {"json": SCHEMA}
    assert "response_format" not in bodies["vllm"]
    assert bodies["llamacpp"]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert "structured_outputs" not in bodies["llamacpp"]
    assert bodies["openai"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": SCHEMA},
    }


async def test_llamacpp_ignores_n_so_the_client_loops_and_sums_usage() -> None:
    with serve_fake_openai(flavor="llamacpp", replies=["one", "two words", "three more words"]) as server:
        async with fast_client(server) as client:
            result = await client.chat(HELLO, GenerationParams(n=3, seed=10, temperature=0.9))
    assert [c.text for c in result.choices] == ["one", "two words", "three more words"]
    requests = server.generation_requests()
    assert len(requests) == 3
    assert all("n" not in r.body for r in requests)
    assert [r.body["seed"] for r in requests] == [10, 11, 12]
    assert result.usage.prompt_tokens == 3 * 8
    assert result.usage.completion_tokens == 1 + 2 + 3


async def test_vllm_gets_n_in_one_request() -> None:
    with serve_fake_openai(flavor="vllm", replies=["a", "b"]) as server:
        async with fast_client(server) as client:
            result = await client.chat(HELLO, GenerationParams(n=2))
    [request] = server.generation_requests()
    assert request.body["n"] == 2
    assert [c.text for c in result.choices] == ["a", "b"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (8, 2)


async def test_a_server_that_ignores_n_unannounced_is_topped_up() -> None:
    with serve_fake_openai(flavor="openai", replies=["a", "b", "c"], ignore_n=True) as server:
        async with fast_client(server) as client:
            result = await client.complete("Say a letter:", GenerationParams(n=3))
    assert [c.text for c in result.choices] == ["a", "b", "c"]
    requests = server.generation_requests()
    assert [r.body.get("n") for r in requests] == [3, None, None]


async def test_logprobs_are_parsed_from_both_shapes() -> None:
    replies = [ScriptedReply("Paris is", logprobs=(-0.5, -1.5)), ScriptedReply("big", logprobs=(-2.0,))]
    with serve_fake_openai(flavor="vllm", replies=replies) as server:
        async with fast_client(server) as client:
            chat = await client.chat(HELLO, GenerationParams(logprobs=True))
            legacy = await client.complete("The capital", GenerationParams(logprobs=True))
    assert chat.choices[0].logprobs == (-0.5, -1.5)
    assert chat.choices[0].mean_logprob == pytest.approx(-1.0)
    assert legacy.choices[0].logprobs == (-2.0,)
    assert chat.choices[0].tokens == ("Paris", " is") and legacy.choices[0].tokens == ("big",)
    chat_body, legacy_body = (r.body for r in server.generation_requests())
    assert chat_body["logprobs"] is True
    assert legacy_body["logprobs"] == 1


async def test_complete_uses_the_completions_endpoint() -> None:
    reply = ScriptedReply(" Paris.", finish_reason="length")
    with serve_fake_openai(flavor="vllm", replies=[reply]) as server:
        async with fast_client(server) as client:
            result = await client.complete("The capital of France is", GenerationParams(max_tokens=4))
    [request] = server.generation_requests()
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == "The capital of France is"
    assert request.body["max_tokens"] == 4
    assert (result.text, result.finish_reason) == (" Paris.", "length")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 1)


async def test_429_is_retried_after_the_servers_retry_after() -> None:
    with serve_fake_openai(flavor="vllm", replies=["ok"]) as server:
        server.fail_next(429, retry_after=0.3)
        async with fast_client(server) as client:
            start = time.monotonic()
            result = await client.chat(HELLO, GenerationParams())
            elapsed = time.monotonic() - start
    assert result.text == "ok"
    assert len(server.generation_requests()) == 2
    assert elapsed >= 0.3


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    with serve_fake_openai(flavor="vllm", replies=["ok"]) as server:
        async with fast_client(server) as client:
            # the date is taken once the client exists, so its set-up does not eat into the wait
            server.fail_next(503, retry_after=email.utils.formatdate(time.time() + 1.5, usegmt=True))
            start = time.monotonic()
            result = await client.chat(HELLO, GenerationParams())
            elapsed = time.monotonic() - start
    assert result.text == "ok"
    assert len(server.generation_requests()) == 2
    assert elapsed >= 0.4  # whole seconds in the date: a wait of 0.5 to 1.5 s, not the 10 ms backoff


async def test_5xx_is_retried_until_it_passes() -> None:
    with serve_fake_openai(flavor="vllm", replies=["ok"]) as server:
        server.fail_next(500, times=2)
        async with fast_client(server, max_retries=2) as client:
            result = await client.chat(HELLO, GenerationParams())
    assert result.text == "ok"
    assert len(server.generation_requests()) == 3


async def test_5xx_past_the_retries_is_a_response_error() -> None:
    with serve_fake_openai(flavor="vllm") as server:
        server.fail_next(503, times=5)
        async with fast_client(server, max_retries=2) as client:
            with pytest.raises(LLMResponseError) as caught:
                await client.chat(HELLO, GenerationParams())
    assert caught.value.status_code == 503
    assert "scripted failure 503" in str(caught.value)
    assert len(server.generation_requests()) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_4xx_is_not_retried(status: int) -> None:
    with serve_fake_openai(flavor="vllm") as server:
        server.fail_next(status)
        async with fast_client(server) as client:
            with pytest.raises(LLMResponseError) as caught:
                await client.chat(HELLO, GenerationParams())
    assert caught.value.status_code == status
    assert len(server.generation_requests()) == 1


async def test_malformed_body_is_a_response_error_and_not_retried() -> None:
    with serve_fake_openai(flavor="vllm") as server:
        server.malformed_next()
        async with fast_client(server) as client:
            with pytest.raises(LLMResponseError, match="not JSON"):
                await client.chat(HELLO, GenerationParams())
    assert len(server.generation_requests()) == 1


async def test_a_retry_after_past_the_deadline_fails_at_once() -> None:
    with serve_fake_openai(flavor="vllm", replies=["ok"]) as server:
        server.fail_next(429, retry_after=30)
        async with fast_client(server, timeout_s=5.0) as client:
            await client.probe()
            start = time.monotonic()
            with pytest.raises(LLMResponseError) as caught:
                await client.chat(HELLO, GenerationParams())
            elapsed = time.monotonic() - start
    assert caught.value.status_code == 429
    assert elapsed < 2.0


async def test_the_deadline_covers_a_slow_answer() -> None:
    with serve_fake_openai(flavor="vllm", replies=["late"]) as server:
        async with fast_client(server, timeout_s=0.5) as client:
            await client.probe()
            server.slow_next(3.0)
            start = time.monotonic()
            with pytest.raises(LLMConnectionError, match=r"no answer within 0\.5s"):
                await client.chat(HELLO, GenerationParams())
            elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 2.0


async def test_a_read_timeout_is_retried() -> None:
    with serve_fake_openai(flavor="vllm", replies=["second try"]) as server:
        server.slow_next(1.0)
        http = httpx.AsyncClient(timeout=httpx.Timeout(0.3))
        async with fast_client(server, client=http, flavor="vllm", model="m") as client:
            result = await client.chat(HELLO, GenerationParams())
        await http.aclose()
    assert result.text == "second try"
    assert len(server.generation_requests()) == 2


async def test_an_unreachable_server_fails_fast_with_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAICompatibleClient(f"http://127.0.0.1:{port}/v1", backoff_s=0.01, max_retries=2)
    start = time.monotonic()
    with pytest.raises(LLMConnectionError, match=f"cannot reach the LLM server at http://127.0.0.1:{port}"):
        await client.chat(HELLO, GenerationParams())
    assert time.monotonic() - start < 2.0
    await client.aclose()


async def test_the_api_key_is_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-very-secret"
    caplog.set_level(logging.DEBUG, logger="leadline")
    with serve_fake_openai(flavor="vllm", replies=["ok"]) as server:
        server.fail_next(500)
        async with fast_client(server, api_key=secret) as client:
            await client.chat(HELLO, GenerationParams())
            shown = repr(client)
    assert secret not in shown and "***" in shown
    assert all(r.headers.get("authorization") == f"Bearer {secret}" for r in server.requests)
    assert all(secret not in str(r.body) for r in server.requests)
    assert "retry 1" in caplog.text
    assert secret not in caplog.text


async def test_count_tokens_uses_each_servers_tokenize_shape() -> None:
    text = "one two three four five"
    with serve_fake_openai(flavor="vllm") as vllm:
        async with fast_client(vllm) as client:
            assert await client.count_tokens_exact(text) == 5
            assert client.count_tokens(text) == estimate_tokens(text)
    assert vllm.requests[-1].body == {"model": "fake-model", "prompt": text, "add_special_tokens": False}
    with serve_fake_openai(flavor="llamacpp") as llama:
        async with fast_client(llama) as client:
            assert await client.count_tokens_exact(text) == 5
    assert llama.requests[-1].body == {"content": text}
    with serve_fake_openai(flavor="openai") as other:
        async with fast_client(other) as client:
            assert await client.count_tokens_exact(text) == estimate_tokens(text)
    assert "/tokenize" not in [r.path for r in other.requests]


async def test_missing_usage_falls_back_to_the_estimator() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "model": "m",
            "choices": [{"index": 0, "message": {"content": "Paris"}, "finish_reason": "stop"}],
        }
        return httpx.Response(200, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with OpenAICompatibleClient("http://llm.test", model="m", flavor="openai", client=http) as client:
        result = await client.chat(HELLO, GenerationParams())
    await http.aclose()
    assert result.usage.completion_tokens == estimate_tokens("Paris")
    assert result.usage.prompt_tokens == estimate_tokens("Answer briefly.\nWhat is the capital of France?")


def test_successive_event_loops_can_share_one_client() -> None:
    # Synchronous callers run each call in its own asyncio.run, and close the client in yet another.
    with serve_fake_openai(flavor="vllm", replies=["first", "second"]) as server:
        client = fast_client(server)
        first = asyncio.run(client.chat(HELLO, GenerationParams()))
        second = asyncio.run(client.complete("Again:", GenerationParams()))
        asyncio.run(client.aclose())
    assert (first.text, second.text) == ("first", "second")
    assert [r.path for r in server.requests].count("/v1/models") == 1


def test_base_url_and_settings_validation() -> None:
    assert api_root("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert api_root("https://api.example.com") == "https://api.example.com"
    with pytest.raises(ConfigError):
        api_root("127.0.0.1:8000")
    with pytest.raises(ConfigError):
        OpenAICompatibleClient("http://x", timeout_s=0)
    with pytest.raises(ConfigError):
        OpenAICompatibleClient("http://x", flavor="tgi")  # type: ignore[arg-type]


async def test_a_read_error_on_a_pooled_connection_is_retried_once_at_once() -> None:
    # A keep-alive connection the server closed while it sat in the pool fails with ReadError as the
    # request goes out: one retry at once (no backoff), and a second failure is a connection error.
    calls: list[float] = []
    failures = {"left": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if failures["left"] > 0:
            failures["left"] -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        body = {
            "model": "m",
            "choices": [{"index": 0, "message": {"content": "Paris"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        }
        return httpx.Response(200, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with OpenAICompatibleClient(
        "http://llm.test", model="m", flavor="openai", client=http, backoff_s=5.0, max_retries=0
    ) as client:
        result = await client.chat(HELLO, GenerationParams())
        assert result.text == "Paris"
        assert len(calls) == 2 and calls[1] - calls[0] < 1.0  # at once, not after the 5 s backoff
        failures["left"] = 2
        with pytest.raises(LLMConnectionError, match="cannot reach the LLM server"):
            await client.chat(HELLO, GenerationParams())
    await http.aclose()
    assert len(calls) == 4


async def test_the_confidence_of_a_json_answer_is_its_values_tokens_not_the_json_around_it() -> None:
    reply = '{"answer": "Paris", "sources": [1]}'
    values = (-0.01, -2.0, -0.01, -0.01)  # tokens: '{"answer":', ' "Paris",', ' "sources":', ' [1]}'
    with serve_fake_openai(flavor="vllm", replies=[ScriptedReply(reply, logprobs=values)]) as server:
        async with fast_client(server) as client:
            chat = await client.chat(HELLO, GenerationParams(logprobs=True))
    choice = chat.choices[0]
    assert "".join(choice.tokens or ()) == reply
    assert choice.field_logprob("answer") == pytest.approx(-2.0)
    assert choice.mean_logprob == pytest.approx(-2.03 / 4)
