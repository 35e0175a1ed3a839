"""Plain records the SQL store returns beyond the loop's protocol: ledger, details, batches, outcomes.

They are frozen dataclasses, never ORM objects, so nothing outside ``storage`` holds a session or
triggers a lazy load; evals, the CLI and the batch runner code against these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True, kw_only=True)
class LedgerTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    llm_calls: int = 0
    seconds: float = 0.0
    money: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.completion_tokens,
            "searches": self.searches,
            "fetches": self.fetches,
            "llm_calls": self.llm_calls,
            "seconds": self.seconds,
            "money": self.money,
        }


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
    pool_tokens: int = 0
    pool_searches: int = 0


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
    share_tokens: int = 0
    share_searches: int = 0
    grant_tokens: int | None = None
    grant_searches: int | None = None
    lease_until: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A question to queue in a batch, with its planned share of the batch budget."""

    question_id: str
    question: str
    share_tokens: int = 0
    share_searches: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BatchProgress:
    """Where a batch stands, from any machine: jobs by status, the pool, and the spend in the ledger."""

    batch_id: str
    status: str
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    pool_tokens: int = 0
    pool_searches: int = 0
    total_tokens: int = 0
    total_searches: int = 0
    spent_tokens: int = 0
    spent_searches: int = 0
    workers: tuple[str, ...] = ()

    @property
    def total_jobs(self) -> int:
        """Jobs in the batch, whatever their status."""
        return self.pending + self.running + self.done + self.failed

    @property
    def finished(self) -> bool:
        """No job waits or runs."""
        return self.pending == 0 and self.running == 0


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
    "BatchProgress",
    "BatchRecord",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "LLMCallRecord",
    "LedgerRecord",
    "LedgerTotals",
    "OutcomeRecord",
    "SearchCallRecord",
]
