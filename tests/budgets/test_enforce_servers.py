"""The n-sample token grant on real engines: OpenAI-compatible servers over HTTP (vLLM-like, which
honours ``n``; llama.cpp-like, where the client makes one request per sample) and the embedded llama.cpp
engine. What the server received is read from its request log, what it spent from the ledger.

The fake server returns its scripted replies whole, whatever ``max_tokens`` says: it is also the
server that ignores ``max_tokens``, whose excess must be recorded as an overrun that stops the run.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from leadline import Budget
from leadline.budgets.enforce import BudgetedLLM
from leadline.budgets.ledger import Ledger
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams, Message
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.llm.openai_client import OpenAICompatibleClient
from leadline.testing import MemoryRunStore
from leadline.testing.fake_openai_server import serve_fake_openai

MESSAGES = [Message("user", "Who wrote Hamlet?")]
SHORT = "William Shakespeare wrote it"  # 4 tokens by the fake server's count


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp"])
def test_a_server_gets_samples_and_tokens_that_fit_what_is_left(flavor: str) -> None:
    async def go() -> None:
        with serve_fake_openai(flavor=flavor, replies=[SHORT] * 10) as server:
            async with OpenAICompatibleClient(server.url, model="fake-model", flavor=flavor) as client:  # type: ignore[arg-type]
                ledger = Ledger(Budget(tokens=120))
                llm = BudgetedLLM(client, ledger, MemoryRunStore(), "r1")
                completion = await llm.chat(
                    "000:answer:0", "answer", MESSAGES, GenerationParams(max_tokens=48, n=5)
                )
                requests = server.generation_requests("/v1/chat/completions")
        assert len(completion.choices) == 2
        if flavor == "vllm":  # one request for both samples
            (request,) = requests
            assert (request.body["n"], request.body["max_tokens"]) == (2, 48)
        else:  # llama.cpp ignores n: one request per sample, each with the per-sample cap
            assert [r.body["max_tokens"] for r in requests] == [48, 48]
            assert all("n" not in r.body for r in requests)
        assert ledger.spend.completion_tokens == 8 <= 120
        assert ledger.overrun == {}

    asyncio.run(go())


def test_a_server_that_ignores_max_tokens_is_an_overrun_and_no_request_follows() -> None:
    long_reply = "word " * 80  # 80 tokens, whatever max_tokens says

    async def go() -> None:
        with serve_fake_openai(flavor="vllm", replies=[long_reply] * 4) as server:
            async with OpenAICompatibleClient(server.url, model="fake-model", flavor="vllm") as client:
                ledger = Ledger(Budget(tokens=1000))
                llm = BudgetedLLM(client, ledger, MemoryRunStore(), "r1")
                await llm.chat("000:think:0", "think", MESSAGES, GenerationParams(max_tokens=30, n=2))
                assert ledger.spend.completion_tokens == 160
                assert ledger.overrun == {"tokens": 100}
                with pytest.raises(BudgetExceededError, match="overrun"):
                    await llm.chat("001:think:0", "think", MESSAGES, GenerationParams(max_tokens=30))
                assert len(server.generation_requests("/v1/chat/completions")) == 1

    asyncio.run(go())


class _FillsEveryCap:
    """Stands in for ``llama_cpp.Llama``: every sample generates exactly its ``max_tokens``."""

    def __init__(self) -> None:
        self.max_tokens: list[int] = []

    def tokenize(self, data: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(range(len(data.split())))

    def create_chat_completion(self, messages: object, **kwargs: Any) -> dict[str, Any]:
        self.max_tokens.append(kwargs["max_tokens"])
        text = " ".join(["word"] * kwargs["max_tokens"])
        return {
            "choices": [{"message": {"content": text}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": kwargs["max_tokens"]},
        }


def _embedded(llama: _FillsEveryCap) -> LlamaCppEngine:
    """The embedded engine's own sampling loop over a stand-in model (the real one is a slow test)."""
    engine = LlamaCppEngine.__new__(LlamaCppEngine)
    engine._llama = llama
    engine._name, engine._seed, engine._logits_all, engine.n_ctx = "stand-in", 0, False, 4096
    engine._lock = threading.Lock()
    return engine


def test_the_embedded_engine_loop_spends_at_most_what_is_left_over_n_samples() -> None:
    llama = _FillsEveryCap()
    ledger = Ledger(Budget(tokens=120))
    llm = BudgetedLLM(_embedded(llama), ledger, MemoryRunStore(), "r1")
    params = GenerationParams(max_tokens=48, n=5, temperature=0.7)
    completion = asyncio.run(llm.chat("000:answer:0", "answer", MESSAGES, params))
    assert llama.max_tokens == [48, 48] and len(completion.choices) == 2
    assert ledger.spend.completion_tokens == 96
    asyncio.run(llm.chat("001:answer:0", "answer", MESSAGES, params))  # 24 left: one sample of 24
    assert llama.max_tokens == [48, 48, 24]
    assert ledger.spend.completion_tokens == 120 and ledger.overrun == {}
    with pytest.raises(BudgetExceededError):
        asyncio.run(llm.chat("002:answer:0", "answer", MESSAGES, params))
    assert len(llama.max_tokens) == 3


@pytest.mark.slow
def test_the_embedded_engine_spends_at_most_what_is_left_over_n_samples() -> None:
    from leadline.config import Settings
    from leadline.wiring import make_llm

    async def go() -> None:
        engine = make_llm(Settings())
        try:
            ledger = Ledger(Budget(tokens=120))
            llm = BudgetedLLM(engine, ledger, MemoryRunStore(), "r1")
            params = GenerationParams(max_tokens=48, n=5, temperature=0.7, seed=1)
            prompt = [Message("user", "Write a long story about a lighthouse keeper.")]
            completion = await llm.chat("000:answer:0", "answer", prompt, params)
            assert len(completion.choices) == 2
            assert ledger.spend.completion_tokens <= 120
            assert ledger.overrun == {}
            # what is left is then shared out again: one sample, cut to the rest
            left = ledger.tokens_left
            await llm.chat("001:answer:0", "answer", prompt, params)
            assert ledger.spend.completion_tokens <= 120
            assert ledger.tokens_left <= left
        finally:
            await engine.aclose()

    asyncio.run(go())
