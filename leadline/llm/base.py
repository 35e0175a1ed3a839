"""The one protocol every language-model backend implements.

The agent, the budget wrapper and the benchmarks only ever see :class:`LLMClient`: an OpenAI-compatible
server (vLLM, llama.cpp server), the in-process llama.cpp engine, the in-process vLLM engine and the
scripted fakes of ``leadline.testing`` are interchangeable behind it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        """The message in the OpenAI wire format."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, kw_only=True)
class GenerationParams:
    """Sampling and shape of one call. ``json_schema`` asks for structured output matching it."""

    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    logprobs: bool = False
    json_schema: dict[str, Any] | None = None
    thinking_token_budget: int | None = None
    """vLLM's cap on reasoning tokens for reasoning models; ignored by engines without one."""


@dataclass(frozen=True)
class Usage:
    """Tokens a call read (prompt) and generated (completion)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )


@dataclass(frozen=True)
class Choice:
    """One sampled continuation."""

    text: str
    reasoning: str | None = None
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    """Log-probability of each generated token, when asked for."""
    tokens: tuple[str, ...] | None = None
    """The text of each generated token, aligned with :attr:`logprobs`, when the engine reports it."""

    @property
    def mean_logprob(self) -> float | None:
        """Mean token log-probability of the choice, or None without logprobs."""
        if not self.logprobs:
            return None
        return sum(self.logprobs) / len(self.logprobs)

    def field_logprob(self, key: str) -> float | None:
        """Mean log-probability of the tokens that spell the value of the JSON field ``key``.

        Most tokens of a structured reply are the JSON around the value (forced by a grammar) or other
        fields (a quote copied from a source); their probabilities say little of how sure the model is of
        the value. A token counts when any of its characters lies inside the value. Without token texts,
        or when the reply has no such field, this is :attr:`mean_logprob`.
        """
        if not self.logprobs:
            return None
        if not self.tokens or len(self.tokens) != len(self.logprobs):
            return self.mean_logprob
        span = json_value_span("".join(self.tokens), key)
        if span is None:
            return self.mean_logprob
        start, end = span
        picked: list[float] = []
        pos = 0
        for tok, lp in zip(self.tokens, self.logprobs, strict=True):
            if pos < end and pos + len(tok) > start:
                picked.append(lp)
            pos += len(tok)
        return sum(picked) / len(picked) if picked else self.mean_logprob


@dataclass(frozen=True)
class Completion:
    """What a call returns: one or more choices and the usage of the whole call."""

    choices: tuple[Choice, ...]
    usage: Usage
    model: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The first choice's text (empty without choices)."""
        return self.choices[0].text if self.choices else ""

    @property
    def reasoning(self) -> str | None:
        """The first choice's reasoning text, when the model returned one."""
        return self.choices[0].reasoning if self.choices else None

    @property
    def finish_reason(self) -> str | None:
        """Why the first choice stopped (``stop``, ``length``...), when known."""
        return self.choices[0].finish_reason if self.choices else None


@runtime_checkable
class LLMClient(Protocol):
    """A language model. Implementations are safe to share across runs of one process."""

    @property
    def model_name(self) -> str:
        """The model this client talks to."""

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """Chat completion over ``messages``."""
        ...

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """Plain text completion of ``prompt``."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (or the best estimate at hand)."""
        ...

    async def aclose(self) -> None:
        """Release connections and engines."""


__all__ = ["Choice", "Completion", "GenerationParams", "LLMClient", "Message", "Role", "Usage"]


_STRING_VALUE = r'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"'
_BARE_VALUE = r'"{key}"\s*:\s*([^\s,{{}}\[\]"][^,}}\]]*?)\s*[,}}\]]'


def json_value_span(text: str, key: str) -> tuple[int, int] | None:
    """Where the first scalar value of the field ``key`` lies in a JSON text (inside its quotes for a
    string), or None when there is no such non-empty value (or it is a list or an object).

    A light scan, not a parser: it also reads a reply that was cut off after the value."""
    k = re.escape(key)
    m = re.search(_STRING_VALUE.format(key=k), text) or re.search(_BARE_VALUE.format(key=k), text)
    if m is None or m.end(1) <= m.start(1):
        return None
    return m.start(1), m.end(1)
