"""Enforcement at the boundary: every LLM call and search goes through here.

:class:`BudgetedLLM` and :class:`BudgetedSearch` are the only way the research loop spends. Each call
has a stable ``call_id`` within its run (graph step, node, ordinal). Before spending, the wrapper asks
the run store whether that call was already made (a resumed run) and replays the recorded result.
Otherwise it checks the ledger (clamping a call's samples and ``max_tokens`` so that together they fit
what is left, refusing a search or fetch past its cap), makes the call, and records the step and its
real spend, so no code path spends outside the ledger and nothing is spent twice. A backend that spends
more than it was granted anyway (a server that ignores ``max_tokens``) is charged what it really spent;
the ledger keeps the excess as an overrun and refuses every later call, so the run ends at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from leadline.budgets.ledger import Ledger, LedgerEntry, SpendKind
from leadline.errors import FetchError
from leadline.llm.base import Choice, Completion, GenerationParams, LLMClient, Message, Usage
from leadline.storage.base import RunStore, StepRecord, off_loop
from leadline.storage.records import LedgerRecord
from leadline.tools.base import Document, Reader, SearchBackend, SearchResult


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _completion_to_dict(c: Completion) -> dict[str, Any]:
    return {
        "model": c.model,
        "usage": asdict(c.usage),
        "choices": [
            {
                "text": ch.text,
                "reasoning": ch.reasoning,
                "finish_reason": ch.finish_reason,
                "logprobs": list(ch.logprobs) if ch.logprobs else None,
                "tokens": list(ch.tokens) if ch.tokens else None,
            }
            for ch in c.choices
        ],
    }


def _completion_from_dict(d: dict[str, Any]) -> Completion:
    return Completion(
        choices=tuple(
            Choice(
                text=ch["text"],
                reasoning=ch.get("reasoning"),
                finish_reason=ch.get("finish_reason"),
                logprobs=tuple(ch["logprobs"]) if ch.get("logprobs") else None,
                tokens=tuple(ch["tokens"]) if ch.get("tokens") else None,
            )
            for ch in d["choices"]
        ),
        usage=Usage(**d["usage"]),
        model=d.get("model", ""),
    )


def steps_by_key(steps: Sequence[StepRecord]) -> dict[str, StepRecord]:
    """A run's recorded steps by call id, for the wrappers' ``recorded`` (the first record of a key
    wins, as in the store)."""
    found: dict[str, StepRecord] = {}
    for step in steps:
        found.setdefault(step.key, step)
    return found


def _spend_kind(kind: str) -> SpendKind:
    return "llm" if kind == "llm" else "fetch" if kind == "fetch" else "search"


_SPENT = ("prompt_tokens", "completion_tokens", "searches", "fetches", "seconds", "money")
"""The spend fields a stored ledger row and a ledger entry share."""


def entry_for_ledger_row(row: LedgerRecord) -> LedgerEntry:
    """The ledger entry a stored ledger row stands for: its spend, not its grant (a row has none)."""
    return LedgerEntry(
        kind=_spend_kind(row.kind), node=row.node, detail=row.step_key, **{f: getattr(row, f) for f in _SPENT}
    )


def entry_for_step(step: StepRecord) -> LedgerEntry:
    """The ledger entry a recorded step stands for (a resumed run rebuilds its ledger from these)."""
    kind = _spend_kind(step.kind)
    granted: int | None = None
    if kind == "llm" and isinstance(step.request.get("max_tokens"), int):
        granted = int(step.request["max_tokens"]) * int(step.request.get("n") or 1)
    return LedgerEntry(
        kind=kind,
        node=step.node,
        prompt_tokens=step.prompt_tokens,
        completion_tokens=step.completion_tokens,
        searches=step.searches,
        fetches=step.fetches,
        seconds=step.seconds,
        detail=step.key,
        granted_tokens=granted,
    )


async def _commit(store: RunStore, ledger: Ledger, step: StepRecord) -> StepRecord:
    """Record a step once and charge the ledger for it, unless another worker recorded this call first
    (then its record is returned and nothing is charged twice). The write runs in a worker thread, so
    the event loop goes on serving the other runs of the process while the database answers; the
    caller still waits for it, so a step is durable before its node returns (and before the checkpoint
    that follows the node)."""
    stored = await off_loop(store.record_step, step)
    if stored.response == step.response:
        ledger.record(entry_for_step(step))
    return stored


class _Recorded:
    """Where a wrapper looks up a call already recorded: the run's steps read once when the run
    started (``steps``), or the store at every call (None: callers that record steps behind the
    wrapper's back, such as tests)."""

    def __init__(self, store: RunStore, run_id: str, steps: dict[str, StepRecord] | None) -> None:
        self.store, self.run_id, self.steps = store, run_id, steps

    async def get(self, call_id: str) -> StepRecord | None:
        if self.steps is not None:
            return self.steps.get(call_id)
        return await off_loop(self.store.get_step, self.run_id, call_id)

    async def commit(self, ledger: Ledger, step: StepRecord) -> StepRecord:
        stored = await _commit(self.store, ledger, step)
        if self.steps is not None:
            self.steps.setdefault(stored.key, stored)
        return stored


class BudgetedLLM:
    """An LLM whose every call is charged to a ledger and recorded once in the run store.

    ``recorded`` is the run's steps as read when it started, by key (:func:`steps_by_key`): a call
    found there is replayed without asking the store again. Without it every call asks the store.
    """

    def __init__(
        self,
        llm: LLMClient,
        ledger: Ledger,
        store: RunStore,
        run_id: str,
        *,
        recorded: dict[str, StepRecord] | None = None,
    ) -> None:
        self.llm = llm
        self.ledger = ledger
        self.store = store
        self.run_id = run_id
        self._recorded = _Recorded(store, run_id, recorded)

    @property
    def model_name(self) -> str:
        """The wrapped client's model."""
        return self.llm.model_name

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the wrapped client's tokenizer."""
        return self.llm.count_tokens(text)

    async def chat(
        self,
        call_id: str,
        node: str,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        reserve: int = 0,
    ) -> Completion:
        """Chat under the budget. ``reserve`` keeps that many tokens back for later calls (the answer).

        Raises :class:`~leadline.errors.BudgetExceededError` when no tokens are left.
        """
        request = {"messages": [m.to_dict() for m in messages]}
        # the key is the call id, stable across a resume; the prompt may differ (its budget line does)
        recorded = await self._recorded.get(call_id)
        if recorded is not None:
            return _completion_from_dict(recorded.response)
        grant = self.ledger.grant(params.max_tokens, n=max(1, params.n), reserve=reserve)
        max_tokens = grant.max_tokens
        thinking = params.thinking_token_budget
        if thinking is not None:
            thinking = min(thinking, max_tokens)
        params = replace(params, max_tokens=max_tokens, n=grant.n, thinking_token_budget=thinking)
        started = time.monotonic()
        completion = await self.llm.chat(messages, params)
        seconds = time.monotonic() - started
        usage = completion.usage
        step = StepRecord(
            run_id=self.run_id,
            key=call_id,
            kind="llm",
            node=node,
            request={
                **request,
                "digest": _digest(request),
                "max_tokens": max_tokens,
                "temperature": params.temperature,
                "n": params.n,
            },
            response=_completion_to_dict(completion),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            seconds=seconds,
        )
        stored = await self._recorded.commit(self.ledger, step)
        if stored.response != step.response:  # another worker recorded this call first: use its result
            return _completion_from_dict(stored.response)
        return completion


class BudgetedSearch:
    """A search backend (and reader) whose calls are charged to a ledger and recorded once
    (``recorded`` as for :class:`BudgetedLLM`)."""

    def __init__(
        self,
        backend: SearchBackend,
        reader: Reader | None,
        ledger: Ledger,
        store: RunStore,
        run_id: str,
        *,
        recorded: dict[str, StepRecord] | None = None,
    ) -> None:
        self.backend = backend
        self.reader = reader
        self.ledger = ledger
        self.store = store
        self.run_id = run_id
        self._recorded = _Recorded(store, run_id, recorded)

    @property
    def follows_links(self) -> bool:
        """Whether the backend's searches can bring linked passages (``links``)."""
        return bool(getattr(self.backend, "follows_links", False))

    async def search(
        self, call_id: str, node: str, query: str, *, k: int = 5, links: int = 0
    ) -> list[SearchResult]:
        """One search under the budget: replayed when recorded, refused past the cap, else run and
        recorded. ``links`` (backends that follow links) asks for that many linked passages more.
        """
        request: dict[str, Any] = {"query": query, "k": k, "backend": self.backend.name}
        if links:
            request["links"] = links
        recorded = await self._recorded.get(call_id)
        if recorded is not None:
            return [SearchResult.from_dict(r) for r in recorded.response["results"]]
        self.ledger.check_search()
        started = time.monotonic()
        if links:
            results = await self.backend.search(query, k=k, links=links)  # type: ignore[call-arg]
        else:
            results = await self.backend.search(query, k=k)
        step = StepRecord(
            run_id=self.run_id,
            key=call_id,
            kind="search",
            node=node,
            request=request,
            response={"results": [r.to_dict() for r in results]},
            searches=1,
            seconds=time.monotonic() - started,
        )
        stored = await self._recorded.commit(self.ledger, step)
        if stored.response != step.response:
            return [SearchResult.from_dict(r) for r in stored.response["results"]]
        return results

    async def read(self, call_id: str, node: str, result: SearchResult) -> Document:
        """The document behind a result: free for local passages, a charged fetch for web pages."""
        if result.text is not None or self.reader is None:
            return Document(
                doc_id=result.doc_id, title=result.title, text=result.text or result.snippet, url=result.url
            )
        request = {"url": result.url or result.doc_id}
        recorded = await self._recorded.get(call_id)
        if recorded is not None:
            return _document_or_raise(recorded.response, request["url"])
        self.ledger.check_fetch()
        started = time.monotonic()
        response: dict[str, Any]
        try:
            document = await self.reader.read(result)
            response = {"document": asdict(document)}
        except FetchError as exc:  # a failed fetch is spent too, and replayed as the same failure
            response = {"error": exc.message, "reason": exc.reason}
        step = StepRecord(
            run_id=self.run_id,
            key=call_id,
            kind="fetch",
            node=node,
            request=request,
            response=response,
            fetches=1,
            seconds=time.monotonic() - started,
        )
        stored = await self._recorded.commit(self.ledger, step)
        return _document_or_raise(stored.response, request["url"])


def _document_or_raise(response: dict[str, Any], url: str) -> Document:
    if "error" in response:
        raise FetchError(response["error"], url=url, reason=response.get("reason", "error"))
    return Document(**response["document"])
