"""Closing the embedded engine while a generation runs in its thread waits for it (no use-after-free)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from leadline.llm.base import GenerationParams, Message
from leadline.llm.llama_cpp_engine import LlamaCppEngine


class _SlowLlama:
    """A stand-in llama.cpp model: a generation takes a while; close() records whether one was running."""

    def __init__(self) -> None:
        self.generating = False
        self.closed_while_generating: bool | None = None

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.generating = True
        time.sleep(0.3)
        self.generating = False
        return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": {}}

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def close(self) -> None:
        self.closed_while_generating = self.generating


def _engine(llama: _SlowLlama) -> LlamaCppEngine:
    engine = LlamaCppEngine.__new__(LlamaCppEngine)
    engine._llama = llama  # type: ignore[assignment]
    engine._name, engine._seed, engine._logits_all, engine.n_ctx = "stand-in", 0, False, 4096
    engine._lock = threading.Lock()
    return engine


def test_aclose_after_a_cancelled_call_waits_for_its_generation() -> None:
    llama = _SlowLlama()
    engine = _engine(llama)

    async def go() -> None:
        call = asyncio.create_task(engine.chat([Message("user", "hi")], GenerationParams(max_tokens=8)))
        for _ in range(200):
            if llama.generating or call.done():
                break
            await asyncio.sleep(0.01)
        assert llama.generating, call.exception() if call.done() else "the generation never started"
        call.cancel()  # the task is cancelled; its thread goes on generating
        await engine.aclose()

    asyncio.run(go())
    assert llama.closed_while_generating is False
