"""Opening a batch in the run database: its id, its total, the plan's shares, and what a rerun continues.

The batch id is a digest of what defines the work (the input file, the research settings, the budgets,
the controller), so running the same command again finds the same batch and continues it: finished
questions are skipped, failed ones retried, interrupted ones resumed from their checkpoints. The batch
row stores everything a worker on another machine needs (``settings``), so ``leadline worker BATCH_ID``
takes nothing but the database URL.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from leadline.batch.inputs import BatchQuestion
from leadline.budgets.ledger import Budget
from leadline.budgets.pool import fit_shares
from leadline.config import Settings
from leadline.errors import ConfigError, InvalidBudgetError
from leadline.storage.records import BatchRecord, JobSpec
from leadline.storage.store import SqlRunStore

ControllerName = Literal["fixed", "adaptive", "runtime"]
RESEARCH_SETTINGS = ("model", "base_url", "corpus", "search", "searxng_url", "seed")
"""The settings that make a batch's research what it is; stored with the batch for its workers."""


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How a batch researches: per-question budget, the batch total, controller and mode."""

    per_question: Budget = field(default_factory=lambda: Budget(tokens=512, searches=3))
    total_tokens: int | None = None
    """The batch's total generated tokens; by default ``per_question.tokens`` times the questions."""
    total_searches: int | None = None
    controller: ControllerName = "adaptive"
    tuned: str | None = None
    """Path of a tuned controller (``leadline tune --save``), read by every worker."""
    runtime: dict[str, Any] | None = None
    """The fitted runtime controller (:class:`~leadline.budgets.fitted.FittedController` JSON) the
    ``runtime`` controller runs on, stored with the batch for its workers; None: its priors."""
    mode: Literal["answer", "report"] = "answer"
    headroom: float = 2.0
    """A run may draw up to its share times this from the pool, when others returned budget."""

    def __post_init__(self) -> None:
        if self.controller not in ("fixed", "adaptive", "runtime"):
            raise ConfigError(f"unknown controller {self.controller!r}; use fixed, adaptive or runtime")
        if self.tuned is not None and self.controller != "adaptive":
            raise ConfigError("--tuned needs the adaptive controller; drop --fixed")
        if self.runtime is not None and self.controller != "runtime":
            raise ConfigError("a fitted runtime controller needs the runtime controller")
        for name in ("total_tokens", "total_searches"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidBudgetError(f"the batch {name.replace('_', ' ')} must be a positive integer")
        if not math.isfinite(self.headroom) or self.headroom < 1:
            raise ConfigError(f"headroom must be at least 1, got {self.headroom}")

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON, stored with the batch for its workers."""
        data = asdict(self)
        data["per_question"] = self.per_question.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchOptions:
        """Options from :meth:`to_dict`."""
        values = dict(data)
        values["per_question"] = Budget.from_dict(values["per_question"])
        return cls(**values)


def parse_total_budget(text: str) -> tuple[int, int]:
    """``TOKENS,SEARCHES`` (e.g. ``200000,600``) for ``--total-budget``."""
    parts = [p.strip().replace("_", "") for p in text.split(",")]
    try:
        tokens, searches = (int(p) for p in parts)
    except ValueError:
        raise InvalidBudgetError(
            f"--total-budget must be TOKENS,SEARCHES (two integers), got {text!r}"
        ) from None
    if tokens < 1 or searches < 1:
        raise InvalidBudgetError(f"--total-budget must be positive, got {text!r}")
    return tokens, searches


def research_settings(settings: Settings) -> dict[str, Any]:
    """The settings a batch stores for its workers (model, server, search, corpus, seed, and the linked
    passages a search brings when there are any: left out at 0, so batch ids stay what they were)."""
    out = {k: getattr(settings, k) for k in RESEARCH_SETTINGS}
    if settings.search_links:
        out["search_links"] = settings.search_links
    return out


def batch_id_for(source: Path | str, settings: Settings, options: BatchOptions) -> str:
    """The id of the batch this input, these settings and these options make (stable across reruns)."""
    where = str(Path(source).resolve()) if isinstance(source, Path) else source
    key = json.dumps(
        {"source": where, "settings": research_settings(settings), "options": options.to_dict()},
        sort_keys=True,
        default=str,
    )
    return "b" + hashlib.sha256(key.encode()).hexdigest()[:15]


def plan_shares(
    questions: Sequence[str], options: BatchOptions, *, total_tokens: int, total_searches: int
) -> tuple[list[tuple[int, int]], float]:
    """Each question's planned (tokens, searches) and the batch price (0 for the fixed controller).

    The adaptive plan spends the total in token-equivalents by marginal gain (easy questions less, hard
    ones more); its shares are then scaled so that neither axis asks for more than the batch has.
    """
    n = len(questions)
    per = options.per_question
    if options.controller == "fixed":
        return fit_shares([(per.tokens, per.searches)] * n, total_tokens, total_searches), 0.0
    from leadline.budgets.adaptive import AdaptiveBatch
    from leadline.budgets.cost import CostModel

    cost = CostModel.for_budget(per)
    total = float(cost.cost(total_tokens, total_searches))
    if options.tuned is not None:
        from leadline.budgets.tuned import TunedModel

        plan = TunedModel.load(Path(options.tuned)).batch(list(questions), total, cost)
    else:
        plan = AdaptiveBatch(list(questions), total_budget=total, cost=cost)
    shares = [(plan.plan[q].tokens, plan.plan[q].searches) for q in questions]
    return fit_shares(shares, total_tokens, total_searches), plan.price


def open_batch(
    store: SqlRunStore,
    batch_id: str,
    questions: Sequence[BatchQuestion],
    settings: Settings,
    options: BatchOptions,
    *,
    name: str = "",
) -> tuple[BatchRecord, int]:
    """Create the batch (plan, pool, jobs) or continue it; returns it and how many questions were new.

    Continuing retries failed jobs and takes back running jobs of workers that are gone (their leases
    pass). Questions added to the input since are queued with the fixed share, and the batch total
    grows by their shares.
    """
    try:
        record = store.get_batch(batch_id)
    except ConfigError:
        record = None
    if record is None:
        n = len(questions)
        total_t = options.total_tokens or options.per_question.tokens * n
        total_s = options.total_searches or options.per_question.searches * n
        shares, price = plan_shares(
            [q.question for q in questions], options, total_tokens=total_t, total_searches=total_s
        )
        store.create_batch(
            batch_id=batch_id,
            name=name,
            budget={"total_tokens": total_t, "total_searches": total_s},
            settings={"research": research_settings(settings), "options": options.to_dict(), "price": price},
            pool_tokens=total_t,
            pool_searches=total_s,
        )
        specs = [
            JobSpec(question_id=q.id, question=q.question, share_tokens=t, share_searches=s, extra=q.extra)
            for q, (t, s) in zip(questions, shares, strict=True)
        ]
        added = store.queue_jobs(batch_id, specs)
        return store.get_batch(batch_id), added
    known = {j.question_id for j in store.list_jobs(batch_id)}
    new = [q for q in questions if q.id not in known]
    added = 0
    if new:
        share = (options.per_question.tokens, options.per_question.searches)
        added = store.queue_jobs(
            batch_id,
            [
                JobSpec(
                    question_id=q.id,
                    question=q.question,
                    share_tokens=share[0],
                    share_searches=share[1],
                    extra=q.extra,
                )
                for q in new
            ],
        )
        store.grow_batch(batch_id, tokens=share[0] * added, searches=share[1] * added)
    store.requeue_jobs(batch_id, statuses=("failed",))
    if record.status != "running":
        store.set_batch_status(batch_id, "running")
    return store.get_batch(batch_id), added


__all__ = [
    "BatchOptions",
    "ControllerName",
    "batch_id_for",
    "fit_shares",
    "open_batch",
    "parse_total_budget",
    "plan_shares",
    "research_settings",
]
