"""The one protocol every language-model backend implements.

The agent, the budget wrapper and the benchmarks only ever see :class:`LLMClient`: an OpenAI-compatible
server (vLLM, llama.cpp server), the in-process llama.cpp engine, the in-process vLLM engine and the
scripted fakes of ``leadline.testing`` are interchangeable behind it.
"""

from __future__ import annotations

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

    @property
    def mean_logprob(self) -> float | None:
        """Mean token log-probability of the choice, or None without logprobs."""
        if not self.logprobs:
            return None
        return sum(self.logprobs) / len(self.logprobs)


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
