"""Several OpenAI-compatible endpoints (vLLM replicas) behind one client: each call goes to the one with
the fewest calls in flight, ties taken in turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leadline.llm.base import Completion, GenerationParams, LLMClient, Message


class LeastLoadedLLM:
    """An :class:`~leadline.llm.base.LLMClient` over replicas serving the same model."""

    def __init__(self, clients: Sequence[LLMClient]) -> None:
        if not clients:
            raise ValueError("LeastLoadedLLM needs at least one client")
        self.clients = list(clients)
        self.in_flight = [0] * len(self.clients)
        self.calls = [0] * len(self.clients)
        self._turn = 0

    @property
    def model_name(self) -> str:
        """The model the replicas serve (the first one's name)."""
        return self.clients[0].model_name

    def count_tokens(self, text: str) -> int:
        """Token count under the first replica's tokenizer."""
        return self.clients[0].count_tokens(text)

    def _pick(self) -> int:
        n = len(self.clients)
        order = [(self._turn + k) % n for k in range(n)]
        best = min(order, key=lambda i: self.in_flight[i])
        self._turn = (best + 1) % n
        return best

    async def _call(self, method: str, *args: Any) -> Completion:
        i = self._pick()
        self.in_flight[i] += 1
        self.calls[i] += 1
        try:
            result: Completion = await getattr(self.clients[i], method)(*args)
            return result
        finally:
            self.in_flight[i] -= 1

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """A chat call on the least loaded replica."""
        return await self._call("chat", messages, params)

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """A text completion on the least loaded replica."""
        return await self._call("complete", prompt, params)

    async def probe(self) -> None:
        """Ask every replica which model it serves (and that it answers) before the first run."""
        for client in self.clients:
            probe = getattr(client, "probe", None)
            if probe is not None:
                await probe()

    async def aclose(self) -> None:
        """Close every replica client."""
        for client in self.clients:
            await client.aclose()


__all__ = ["LeastLoadedLLM"]
