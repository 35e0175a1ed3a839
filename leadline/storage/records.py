"""Plain records the SQL store returns beyond the loop's protocol: ledger, details, batches, outcomes.

They are frozen dataclasses, never ORM objects, so nothing outside ``storage`` holds a session or
triggers a lazy load; evals, the CLI and the batch runner code against these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

JobStatus = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True, kw_only=True)
class LedgerRecord:
    """One spend of a run, written with the step that caused it (``step_key``)."""

    run_id: str
    step_key: str
    kind: str
    node: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    seconds: float = 0.0
    money: float = 0.0


@dataclass(kw_only=True)
class Spend:
    """What a run spent: the ledger's running totals, the store's sums and a result's ``spend``.

    One type for all three (the budgets layer imports it from here; storage never imports budgets).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    llm_calls: int = 0
    seconds: float = 0.0
    money: float = 0.0

    @property
    def tokens(self) -> int:
        """Generated tokens, the token axis of the budget."""
        return self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """The seven fields and ``tokens`` (the generated tokens again, under the budget's name)."""
        data = asdict(self)
        data["tokens"] = self.tokens
        return data


LedgerTotals = Spend
"""The store's name for :class:`Spend` (``SqlRunStore.ledger_totals``): the same type."""


@dataclass(frozen=True, kw_only=True)
class LLMCallRecord:
    run_id: str
    step_key: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class SearchCallRecord:
    run_id: str
    step_key: str
    query: str
    backend: str
    n_results: int
    results: list[Any]
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class BatchRecord:
    batch_id: str
    name: str
    status: str
    budget: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    job_id: int
    batch_id: str
    question_id: str
    question: str
    status: JobStatus
    run_id: str | None = None
    attempts: int = 0
    worker: str = ""
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutcomeRecord:
    """One row of an outcome table: a question answered at one budget point, scored, with real spend."""

    question_id: str
    budget_tokens: int
    budget_searches: int
    shape: str = "sequential"
    question: str = ""
    answer: str = ""
    em: float = 0.0
    f1: float = 0.0
    recall: float = 0.0
    spent_prompt_tokens: int = 0
    spent_tokens: int = 0
    """Generated tokens actually spent (the token axis)."""
    spent_searches: int = 0
    spent_fetches: int = 0
    spent_seconds: float = 0.0
    difficulty: float | None = None
    batch_id: str | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "BatchRecord",
    "JobRecord",
    "JobStatus",
    "LLMCallRecord",
    "LedgerRecord",
    "LedgerTotals",
    "OutcomeRecord",
    "SearchCallRecord",
    "Spend",
]
