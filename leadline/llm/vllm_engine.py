"""vLLM in-process (``vllm.LLM``), for offline batch work on GPU machines.

A server is the usual way to use vLLM (see :mod:`leadline.llm.openai_client`); this engine is for batch
report generation on a GPU worker, where one process owns the GPU and feeds it many prompts at once
(:meth:`VllmEngine.chat_batch`). vllm is imported only when an engine is built, so leadline installs and
imports without it; a missing vllm is a :class:`~leadline.errors.ConfigError` that names the extra.

Structured output uses vLLM's current API, ``SamplingParams(structured_outputs=StructuredOutputsParams(
json=schema))`` (the ``guided_decoding``/``GuidedDecodingParams`` spelling was removed in v0.12).
Reasoning text is not split out here: that is the server's reasoning parser's job.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Sequence
from typing import Any

from leadline.errors import ConfigError, LLMError
from leadline.llm.base import Choice, Completion, GenerationParams, Message, Usage

INSTALL_HINT = "pip install 'leadline[vllm]'"


def import_vllm() -> Any:
    """The ``vllm`` module, or a ConfigError that says how to install it."""
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise ConfigError(
            f"the in-process vLLM engine needs the vllm package ({exc}); install it with: {INSTALL_HINT}"
        ) from exc


def sampling_params(vllm: Any, params: GenerationParams) -> Any:
    """vLLM ``SamplingParams`` for ``params``."""
    kwargs: dict[str, Any] = {
        "n": max(1, params.n),
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "seed": params.seed,
        "stop": list(params.stop) or None,
        # 0 returns the sampled token's log-probability alone, which is all a Choice keeps.
        "logprobs": 0 if params.logprobs else None,
    }
    if params.thinking_token_budget is not None:
        kwargs["thinking_token_budget"] = params.thinking_token_budget
    if params.json_schema is not None:
        from vllm.sampling_params import StructuredOutputsParams

        kwargs["structured_outputs"] = StructuredOutputsParams(json=params.json_schema)
    return vllm.SamplingParams(**kwargs)


def completion_from_output(output: Any) -> Completion:
    """A :class:`Completion` from one vLLM ``RequestOutput``."""
    choices = []
    completion_tokens = 0
    for sample in output.outputs:
        token_ids = list(sample.token_ids)
        completion_tokens += len(token_ids)
        logprobs = tokens = None
        if sample.logprobs is not None:
            # One {token id: Logprob} per position; the sampled token is always among them.
            picked = [step[token] for step, token in zip(sample.logprobs, token_ids, strict=False)]
            logprobs = tuple(float(p.logprob) for p in picked)
            texts = [t for p in picked if isinstance(t := getattr(p, "decoded_token", None), str)]
            tokens = tuple(texts) if len(texts) == len(picked) else None
        choices.append(
            Choice(text=sample.text, finish_reason=sample.finish_reason, logprobs=logprobs, tokens=tokens)
        )
    prompt_tokens = len(output.prompt_token_ids or ())
    return Completion(choices=tuple(choices), usage=Usage(prompt_tokens, completion_tokens))


class VllmEngine:
    """An :class:`~leadline.llm.base.LLMClient` over ``vllm.LLM`` in this process.

    ``engine_kwargs`` go to ``vllm.LLM`` unchanged (``gpu_memory_utilization``, ``max_model_len``,
    ``tensor_parallel_size``, ``dtype``...). Calls run in a worker thread, one at a time: ``vllm.LLM`` is
    not re-entrant, and its own batching is what :meth:`chat_batch` is for.
    """

    def __init__(self, model: str, **engine_kwargs: Any) -> None:
        self._vllm = import_vllm()
        self._model = model
        try:
            self._llm = self._vllm.LLM(model=model, **engine_kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            raise LLMError(f"vLLM could not load {model!r}: {exc}") from exc
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VllmEngine(model={self._model!r})"

    @property
    def model_name(self) -> str:
        """The model the engine serves."""
        return self._model

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One chat completion (a batch of one)."""
        [result] = await self.chat_batch([messages], params)
        return result

    async def chat_batch(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """One completion per conversation, generated as one vLLM batch."""
        payload = [[m.to_dict() for m in conversation] for conversation in conversations]
        sampling = sampling_params(self._vllm, params)
        outputs = await asyncio.to_thread(self._locked, self._llm.chat, payload, sampling, use_tqdm=False)
        return [self._named(completion_from_output(o)) for o in outputs]

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """One plain completion (a batch of one)."""
        [result] = await self.complete_batch([prompt], params)
        return result

    async def complete_batch(self, prompts: Sequence[str], params: GenerationParams) -> list[Completion]:
        """Complete many prompts in one engine call (vLLM schedules them together)."""
        sampling = sampling_params(self._vllm, params)
        outputs = await asyncio.to_thread(
            self._locked, self._llm.generate, list(prompts), sampling, use_tqdm=False
        )
        return [self._named(completion_from_output(o)) for o in outputs]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer."""
        return len(self._llm.get_tokenizer().encode(text, add_special_tokens=False))

    async def aclose(self) -> None:
        # vllm.LLM frees its engine when collected; dropping the reference is the documented shutdown.
        """Drop the engine (vLLM frees it when collected)."""
        self._llm = None

    def _locked(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(*args, **kwargs)

    def _named(self, completion: Completion) -> Completion:
        return Completion(choices=completion.choices, usage=completion.usage, model=self._model)
