"""The client's contract against a real vLLM OpenAI-compatible server (``make test-vllm``).

The server's URL comes from ``LEADLINE_VLLM_URL``; ``scripts/vllm_cpu_lane.sh`` starts vLLM on the CPU
with the packaged Qwen2.5 0.5B (converted to safetensors) and sets it. Generations are short: on two
shared cores the server decodes a few tokens a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest

from leadline.errors import LLMResponseError
from leadline.llm.base import GenerationParams, Message
from leadline.llm.openai_client import OpenAICompatibleClient

pytestmark = [pytest.mark.vllm, pytest.mark.anyio]

CAPITAL = [
    Message("system", "You are a geography assistant. Answer with the city name only."),
    Message("user", "What is the capital of France?"),
]
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[OpenAICompatibleClient]:
    url = os.environ.get("LEADLINE_VLLM_URL")
    if not url:
        pytest.skip("set LEADLINE_VLLM_URL to a vLLM server (make test-vllm starts one)")
    async with OpenAICompatibleClient(url, timeout_s=600.0) as llm:
        yield llm


async def test_probe_finds_vllm_and_its_model(client: OpenAICompatibleClient) -> None:
    info = await client.probe()
    assert info.flavor == "vllm"
    assert info.model == "qwen2.5-0.5b-instruct"


async def test_chat_answers_with_usage_and_finish_reason(client: OpenAICompatibleClient) -> None:
    result = await client.chat(CAPITAL, GenerationParams(max_tokens=16, temperature=0.0))
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert result.reasoning is None  # no reasoning parser for a non-reasoning model
    assert result.model == "qwen2.5-0.5b-instruct"
    assert result.usage.prompt_tokens > 10
    assert 0 < result.usage.completion_tokens <= 16


async def test_complete_respects_max_tokens(client: OpenAICompatibleClient) -> None:
    result = await client.complete("The capital of France is", GenerationParams(max_tokens=5))
    assert result.text.strip()
    assert result.usage.prompt_tokens == 5
    assert result.usage.completion_tokens <= 5
    assert result.finish_reason in {"stop", "length"}


async def test_stop_sequence_ends_the_text(client: OpenAICompatibleClient) -> None:
    prompt = "Count from one to ten in words, separated by commas: one,"
    result = await client.complete(prompt, GenerationParams(max_tokens=24, stop=(",",)))
    assert "," not in result.text
    assert result.finish_reason == "stop"


async def test_n_samples_in_one_call(client: OpenAICompatibleClient) -> None:
    params = GenerationParams(max_tokens=8, temperature=1.0, n=2, seed=3)
    result = await client.chat(CAPITAL, params)
    assert len(result.choices) == 2
    assert all(c.text for c in result.choices)
    # usage covers both samples: one prompt, the completion tokens of each choice
    assert result.usage.completion_tokens >= 2


async def test_seed_makes_sampling_repeatable(client: OpenAICompatibleClient) -> None:
    params = GenerationParams(max_tokens=12, temperature=1.0, seed=1234)
    prompt = "Write a short, made-up name for a ship:"
    first = await client.complete(prompt, params)
    second = await client.complete(prompt, params)
    assert first.text == second.text


async def test_logprobs_for_each_generated_token(client: OpenAICompatibleClient) -> None:
    chat = await client.chat(CAPITAL, GenerationParams(max_tokens=6, logprobs=True))
    assert chat.choices[0].logprobs is not None
    assert len(chat.choices[0].logprobs) == chat.usage.completion_tokens
    assert all(lp <= 0.0 for lp in chat.choices[0].logprobs)
    legacy = await client.complete("The capital of France is", GenerationParams(max_tokens=4, logprobs=True))
    assert legacy.choices[0].logprobs is not None
    assert len(legacy.choices[0].logprobs) == legacy.usage.completion_tokens


async def test_structured_output_obeys_the_schema(client: OpenAICompatibleClient) -> None:
    messages = [Message("user", "Give the capital of France and its country as JSON.")]
    params = GenerationParams(max_tokens=48, json_schema=CITY_SCHEMA)
    for result in (
        await client.chat(messages, params),
        await client.complete("The capital of France, as JSON with city and country: ", params),
    ):
        value = json.loads(result.text)
        assert set(value) == {"city", "country"}
        assert all(isinstance(v, str) for v in value.values())


async def test_thinking_token_budget_reaches_the_server(client: OpenAICompatibleClient) -> None:
    # The field is read at the top level: vLLM refuses it for a server started without a reasoning parser.
    with pytest.raises(LLMResponseError) as caught:
        await client.chat(CAPITAL, GenerationParams(max_tokens=8, thinking_token_budget=4))
    assert caught.value.status_code == 400
    assert "thinking_token_budget" in str(caught.value)


async def test_tokenize_counts_with_the_models_tokenizer(client: OpenAICompatibleClient) -> None:
    assert await client.count_tokens_exact("Hello world") == 2
    text = "Budgets split between reasoning tokens and search calls."
    exact = await client.count_tokens_exact(text)
    result = await client.complete(text, GenerationParams(max_tokens=1))
    assert exact == result.usage.prompt_tokens
