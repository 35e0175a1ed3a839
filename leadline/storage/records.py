"""Plain records the SQL store returns beyond the loop's protocol: ledger, details, batches, outcomes.

They are frozen dataclasses, never ORM objects, so nothing outside ``storage`` holds a session or
triggers a lazy load; evals, the CLI and the batch runner code against these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from leadline.errors import ConfigError

JobStatus = Literal["pending", "running", "done", "failed"]

OUTCOME_METRICS = ("em", "f1", "recall")
"""The scores an outcome row carries."""


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
    """One LLM call of a run: model, tokens and latency."""

    run_id: str
    step_key: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class SearchCallRecord:
    """One search of a run: query, backend, results and latency."""

    run_id: str
    step_key: str
    query: str
    backend: str
    n_results: int
    results: list[Any]
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class BatchRecord:
    """A batch as stored: name, status, budget and settings."""

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
    """One question of a batch: its status, the run that answered it, attempts and error."""

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
    """One row of an outcome table: a question answered at one budget point, scored, with real spend.

    The one type for it: sweeps write it as JSONL, the store keeps it in ``outcome_rows``, curve fitting
    and the policy comparison read it (``leadline.evals.outcomes`` names it ``OutcomeRow`` too).
    """

    question_id: str
    tokens: int
    """The budget point's generated tokens."""
    searches: int
    """The budget point's search calls."""
    shape: str = "sequential"
    split: str = "dev"
    """Train rows fit curves and estimators; dev rows evaluate policies."""
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
    features: Mapping[str, float] = field(default_factory=dict)
    """The question's text features (and probe features, when the sweep ran probes)."""
    batch_id: str | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tokens < 0 or self.searches < 0:
            raise ConfigError(f"budget point of {self.question_id} must be non-negative")
        for metric in OUTCOME_METRICS:
            value = getattr(self, metric)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ConfigError(f"{metric} of {self.question_id} must be a finite number, got {value!r}")

    @property
    def point(self) -> tuple[int, int, str]:
        """The budget point: (tokens, searches, shape)."""
        return (self.tokens, self.searches, self.shape)

    def score(self, metric: str = "f1") -> float:
        """The row's score under ``metric`` (one of :data:`OUTCOME_METRICS`)."""
        if metric not in OUTCOME_METRICS:
            raise ConfigError(f"unknown metric {metric!r}; known: {OUTCOME_METRICS}")
        return float(getattr(self, metric))

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object (one line of an outcome-table JSONL file)."""
        data = asdict(self)
        data["features"] = dict(self.features)
        return data

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, features_of: Callable[[str], Mapping[str, float]] | None = None
    ) -> OutcomeRecord:
        """Parse one JSON row; numeric columns that are not fields are features (flat tables).

        ``features_of(question)`` adds features every row should carry (``evals`` passes the text
        features, so estimators see one set of columns); explicit columns win.
        """
        known = set(cls.__dataclass_fields__)
        features = dict(data.get("features") or {})
        for key, value in data.items():
            if key not in known and isinstance(value, int | float) and not isinstance(value, bool):
                features[key] = float(value)
        if features_of is not None and data.get("question"):
            for key, value in features_of(str(data["question"])).items():
                features.setdefault(key, value)
        try:
            difficulty = data.get("difficulty")
            return cls(
                question_id=str(data["question_id"]),
                split=str(data.get("split", "dev")),
                question=str(data.get("question", "")),
                tokens=int(data["tokens"]),
                searches=int(data["searches"]),
                shape=str(data.get("shape", "sequential")),
                answer=str(data.get("answer", "")),
                em=float(data.get("em", 0.0)),
                f1=float(data.get("f1", 0.0)),
                recall=float(data.get("recall", 0.0)),
                spent_prompt_tokens=int(data.get("spent_prompt_tokens", 0)),
                spent_tokens=int(data.get("spent_tokens", 0)),
                spent_searches=int(data.get("spent_searches", 0)),
                spent_fetches=int(data.get("spent_fetches", 0)),
                spent_seconds=float(data.get("spent_seconds", 0.0)),
                difficulty=None if difficulty is None else float(difficulty),
                features=features,
                batch_id=data.get("batch_id"),
                run_id=data.get("run_id"),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad outcome row: {exc}") from exc


__all__ = [
    "OUTCOME_METRICS",
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
    "Spend",
]
