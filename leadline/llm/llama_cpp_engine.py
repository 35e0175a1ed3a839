"""The embedded default engine: llama.cpp in-process through llama-cpp-python.

It runs a small GGUF model on the CPU with no server, so ``leadline ask`` works offline on a fresh
machine. Structured output goes through llama.cpp's JSON-schema grammar. One model instance is not
thread-safe, so calls are serialized with a lock and run in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadline.errors import ConfigError, LLMError, ModelNotFoundError
from leadline.llm.base import Choice, Completion, GenerationParams, Message, Usage
from leadline.llm.openai_wire import parse_logprob_tokens, parse_logprobs


def _import_llama() -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "the embedded engine needs llama-cpp-python: pip install 'leadline[embedded]'"
        ) from exc
    return Llama


class LlamaCppEngine:
    """An :class:`~leadline.llm.base.LLMClient` running a GGUF model in this process."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        logits_all: bool = False,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelNotFoundError(f"model file not found: {path}")
        llama_cls = _import_llama()
        threads = n_threads or max(1, os.cpu_count() or 1)
        try:
            self._llama = llama_cls(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                logits_all=logits_all,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a bad file as ValueError or RuntimeError
            raise ModelNotFoundError(f"could not load model {path}: {exc}") from exc
        self._name = name or path.stem
        self._seed = seed
        self._lock = threading.Lock()
        self._logits_all = logits_all
        self.n_ctx = n_ctx

    @property
    def model_name(self) -> str:
        """The packaged model's name (or the GGUF file's)."""
        return self._name

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer."""
        if not text:
            return 0
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _fit_max_tokens(self, prompt_tokens: int, max_tokens: int) -> int:
        room = self.n_ctx - prompt_tokens - 8
        if room <= 0:
            raise LLMError(f"prompt of {prompt_tokens} tokens does not fit the context of {self.n_ctx}")
        return max(1, min(max_tokens, room))

    def _kwargs(self, params: GenerationParams, seed: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": seed,
        }
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.logprobs and self._logits_all:
            kwargs["logprobs"] = True
        return kwargs

    @staticmethod
    def _choice(raw: dict[str, Any], *, chat: bool) -> Choice:
        first = raw["choices"][0]
        text = first["message"].get("content") or "" if chat else first.get("text", "")
        lp = first.get("logprobs")
        return Choice(
            text=text,
            finish_reason=first.get("finish_reason"),
            logprobs=parse_logprobs(lp) or None,
            tokens=parse_logprob_tokens(lp) or None,
        )

    def _run(self, call: Any, params: GenerationParams) -> Completion:
        choices: list[Choice] = []
        usage = Usage()
        raw: dict[str, Any] = {}
        with self._lock:
            for i in range(max(1, params.n)):
                seed = (params.seed if params.seed is not None else self._seed) + i
                try:
                    raw, chat = call(seed)
                except ValueError as exc:  # context overflow and similar
                    raise LLMError(f"llama.cpp refused the request: {exc}") from exc
                choices.append(self._choice(raw, chat=chat))
                u = raw.get("usage") or {}
                usage = usage + Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
        return Completion(choices=tuple(choices), usage=usage, model=self._name, raw=raw)

    def _chat_sync(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        msgs = [m.to_dict() for m in messages]
        prompt_tokens = sum(self.count_tokens(m.content) + 4 for m in messages)
        max_tokens = self._fit_max_tokens(prompt_tokens, params.max_tokens)

        def call(seed: int) -> tuple[dict[str, Any], bool]:
            kwargs = self._kwargs(params, seed)
            kwargs["max_tokens"] = max_tokens
            if params.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema}
            if kwargs.get("logprobs"):
                # llama-cpp-python's chat handler passes ``top_logprobs`` on as the completion's
                # ``logprobs``: without it the chat response carries none.
                kwargs["top_logprobs"] = 1
            return self._llama.create_chat_completion(messages=msgs, **kwargs), True

        return self._run(call, params)

    def _complete_sync(self, prompt: str, params: GenerationParams) -> Completion:
        max_tokens = self._fit_max_tokens(self.count_tokens(prompt), params.max_tokens)

        def call(seed: int) -> tuple[dict[str, Any], bool]:
            kwargs = self._kwargs(params, seed)
            kwargs["max_tokens"] = max_tokens
            if params.json_schema is not None:
                import json

                from llama_cpp.llama_grammar import LlamaGrammar

                kwargs["grammar"] = LlamaGrammar.from_json_schema(
                    json.dumps(params.json_schema), verbose=False
                )
            return self._llama.create_completion(prompt=prompt, **kwargs), False

        return self._run(call, params)

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One chat completion, run in a thread (llama.cpp is synchronous)."""
        return await asyncio.to_thread(self._chat_sync, messages, params)

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """One plain completion, run in a thread."""
        return await asyncio.to_thread(self._complete_sync, prompt, params)

    async def aclose(self) -> None:
        """Free the model, after the generation in flight (if any) has finished.

        A call whose awaiting task was cancelled keeps running in its thread; freeing the context under
        it would crash the process (llama.cpp decodes into freed memory), so closing takes the same lock.
        """
        close = getattr(self._llama, "close", None)
        if close is not None:
            await asyncio.to_thread(self._close_locked, close)

    def _close_locked(self, close: Any) -> None:
        with self._lock:
            close()
