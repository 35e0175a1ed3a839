"""The embedded llama.cpp engine on the real packaged model (CPU, a few seconds)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from leadline.errors import ModelNotFoundError
from leadline.llm.base import GenerationParams, LLMClient, Message
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.llm.models import resolve_model_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppEngine:
    path = resolve_model_file("qwen2.5-0.5b-instruct", tmp_path_factory.mktemp("models"))
    return LlamaCppEngine(path, name="qwen", n_ctx=2048, seed=7)


def test_chat_answers_with_usage_and_finish_reason(engine: LlamaCppEngine) -> None:
    assert isinstance(engine, LLMClient)
    c = asyncio.run(
        engine.chat(
            [Message("user", "What is the capital of France? One word.")], GenerationParams(max_tokens=16)
        )
    )
    assert "paris" in c.text.lower()
    assert c.usage.prompt_tokens > 5 and 0 < c.usage.completion_tokens <= 16
    assert c.finish_reason in ("stop", "length")


def test_json_schema_output_is_valid_json(engine: LlamaCppEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
        "required": ["queries"],
    }
    c = asyncio.run(
        engine.chat(
            [Message("user", "Give two search queries about the Eiffel Tower as JSON.")],
            GenerationParams(max_tokens=64, json_schema=schema),
        )
    )
    data = json.loads(c.text)
    assert isinstance(data["queries"], list)


def test_max_tokens_is_respected_and_n_samples_are_returned(engine: LlamaCppEngine) -> None:
    c = asyncio.run(
        engine.chat(
            [Message("user", "Count from one to one hundred in words.")],
            GenerationParams(max_tokens=8, n=2, temperature=0.8, seed=1),
        )
    )
    assert len(c.choices) == 2
    assert c.usage.completion_tokens <= 16
    assert all(ch.finish_reason in ("stop", "length") for ch in c.choices)
    assert c.choices[0].text != c.choices[1].text  # different seeds per sample


def test_seeded_generation_is_reproducible(engine: LlamaCppEngine) -> None:
    p = GenerationParams(max_tokens=12, temperature=0.9, seed=42)
    a = asyncio.run(engine.complete("Once upon a time", p))
    b = asyncio.run(engine.complete("Once upon a time", p))
    assert a.text == b.text


def test_token_count_uses_the_model_tokenizer(engine: LlamaCppEngine) -> None:
    assert engine.count_tokens("") == 0
    assert 2 <= engine.count_tokens("Hello, world!") <= 6


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        LlamaCppEngine(tmp_path / "none.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelNotFoundError):
        LlamaCppEngine(bad)


def test_chat_returns_token_logprobs_when_asked(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = resolve_model_file("qwen2.5-0.5b-instruct", tmp_path_factory.mktemp("models-lp"))
    engine = LlamaCppEngine(path, name="qwen", n_ctx=512, seed=7, logits_all=True)
    params = GenerationParams(max_tokens=8, logprobs=True)
    c = asyncio.run(engine.chat([Message("user", "What is the capital of France? One word.")], params))
    lp = c.choices[0].logprobs
    assert lp is not None and len(lp) == c.usage.completion_tokens
    assert all(x <= 0.0 for x in lp)
    assert c.choices[0].tokens is not None and "".join(c.choices[0].tokens) == c.choices[0].text
    assert c.choices[0].mean_logprob is not None and c.choices[0].mean_logprob > -1.0  # a confident answer
