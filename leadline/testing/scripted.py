"""Scripted fakes for testing research loops without a model or a search engine.

``ScriptedLLM`` answers from a queue (or a function of the request) and records every call;
``FakeSearch`` ranks a handful of in-memory documents by word overlap. Users test their own graphs and
controllers with them; leadline's own unit tests do the same. Real engines are tested elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from leadline.llm.base import Choice, Completion, GenerationParams, Message, Usage
from leadline.llm.tokens import estimate_tokens
from leadline.tools.base import Document, SearchResult

Responder = Callable[[Sequence[Message], GenerationParams], str]


@dataclass
class LLMCall:
    """One call a ScriptedLLM received: the messages and the generation parameters."""

    messages: tuple[Message, ...]
    params: GenerationParams

    @property
    def prompt(self) -> str:
        """The call's messages joined into one text (for assertions)."""
        return "\n".join(m.content for m in self.messages)


class ScriptedLLM:
    """An :class:`~leadline.llm.base.LLMClient` that replies from a script.

    ``responses`` is a list of strings or exceptions used in order, or a function of the request;
    with ``default`` set, an empty queue keeps answering it instead of failing.
    """

    def __init__(
        self,
        responses: Iterable[str | BaseException] | Responder = (),
        *,
        default: str | None = None,
        name: str = "scripted",
    ) -> None:
        self._fn: Responder | None = responses if callable(responses) else None
        self._queue: list[str | BaseException] = [] if callable(responses) else list(responses)
        self.default = default
        self.calls: list[LLMCall] = []
        self._name = name

    @property
    def model_name(self) -> str:
        """The scripted model's name."""
        return self._name

    def count_tokens(self, text: str) -> int:
        """Estimated tokens of ``text`` (the tiktoken estimator)."""
        return estimate_tokens(text)

    def _next(self, messages: Sequence[Message], params: GenerationParams) -> str:
        if self._fn is not None:
            return self._fn(messages, params)
        if self._queue:
            item = self._queue.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        if self.default is not None:
            return self.default
        raise AssertionError(f"ScriptedLLM ran out of responses at call {len(self.calls)}")

    def _completion(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        self.calls.append(LLMCall(tuple(messages), params))
        choices = []
        completion_tokens = 0
        for _ in range(max(1, params.n)):
            text = self._next(messages, params)
            tokens = estimate_tokens(text)
            if tokens > params.max_tokens:  # a real engine stops at max_tokens
                text = " ".join(text.split()[: params.max_tokens])
                tokens = params.max_tokens
            completion_tokens += tokens
            choices.append(Choice(text=text, finish_reason="stop"))
        prompt_tokens = sum(estimate_tokens(m.content) for m in messages)
        return Completion(
            choices=tuple(choices), usage=Usage(prompt_tokens, completion_tokens), model=self._name
        )

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """Record the call and return the next scripted reply (or raise the scripted error)."""
        return self._completion(messages, params)

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """Like :meth:`chat`, for a plain prompt."""
        return self._completion([Message("user", prompt)], params)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None

    def assert_complete(self) -> None:
        """Fail if scripted responses were left unused."""
        assert not self._queue, f"{len(self._queue)} scripted responses were never used"


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2}


@dataclass
class FakeSearch:
    """A search backend and reader over a few in-memory documents, ranked by word overlap."""

    documents: list[Document]
    name: str = "fake"
    queries: list[str] = field(default_factory=list)

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Rank the documents by words shared with the query; the query is recorded."""
        self.queries.append(query)
        q = _words(query)
        scored = [(len(q & _words(d.title + " " + d.text)), d) for d in self.documents]
        scored = [(s, d) for s, d in scored if s > 0]
        scored.sort(key=lambda sd: (-sd[0], sd[1].doc_id))
        return [
            SearchResult(
                doc_id=d.doc_id,
                title=d.title,
                snippet=d.text[:200],
                url=d.url,
                score=float(s),
                rank=i + 1,
                backend=self.name,
                text=d.text,
            )
            for i, (s, d) in enumerate(scored[:k])
        ]

    async def read(self, result: SearchResult) -> Document:
        """The document a result points to (KeyError for an unknown id)."""
        for d in self.documents:
            if d.doc_id == result.doc_id:
                return d
        raise KeyError(result.doc_id)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None
