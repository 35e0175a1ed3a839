"""A controller tuned on an outcome table: what ``leadline tune --save`` writes and ``--tuned`` loads.

``leadline tune`` shows what each budget point buys on real runs; this closes the loop from that table
to the runtime controller. From the table's *train* rows it fits what the counterfactual evaluation
(:mod:`leadline.evals.policies`) fits — a logistic difficulty estimator ("failed at the cheapest point")
and gain curves per difficulty bucket — and uses difficulty only when cross-validation on the train
questions says its allocations beat one pooled curve for every question. The result is a small JSON
file; :meth:`TunedModel.controller` builds the :class:`~leadline.budgets.adaptive.AdaptiveController`
(and :meth:`TunedModel.batch` the :class:`~leadline.budgets.adaptive.AdaptiveBatch`) that use it; the
fit itself is :func:`leadline.evals.tuning.fit_tuned`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leadline.budgets.adaptive import AdaptiveBatch, AdaptiveController, DifficultyCurves
from leadline.budgets.cost import CostModel
from leadline.budgets.difficulty import DifficultyEstimator, LearnedEstimator, TextFeatureEstimator
from leadline.errors import ConfigError

FORMAT_VERSION = 1
TunedKind = Literal["buckets", "pooled"]


@dataclass(frozen=True)
class TunedModel:
    """Fitted difficulty estimator (for ``buckets``) and curves, with how they were chosen."""

    kind: TunedKind
    curves: DifficultyCurves
    estimator: LearnedEstimator | None = None
    metric: str = "f1"
    held_out: dict[str, float] = field(default_factory=dict)
    """Mean held-out allocation quality of each candidate on the train questions."""
    train_questions: int = 0

    def difficulty(self) -> DifficultyEstimator:
        """The estimator the controller uses (text features give a pooled model its question type)."""
        return (
            self.estimator
            if self.kind == "buckets" and self.estimator is not None
            else TextFeatureEstimator()
        )

    def controller(self, **kwargs: Any) -> AdaptiveController:
        """A controller for one run that allocates from these curves."""
        return AdaptiveController(estimator=self.difficulty(), curves=self.curves, **kwargs)

    def batch(self, questions: Sequence[str], total_budget: float, cost: CostModel) -> AdaptiveBatch:
        """A batch planner over ``questions`` with these curves and estimator."""
        return AdaptiveBatch(
            questions, total_budget=total_budget, estimator=self.difficulty(), curves=self.curves, cost=cost
        )

    # -- JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The tuned controller as JSON-ready data (versioned)."""
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "metric": self.metric,
            "held_out": dict(self.held_out),
            "train_questions": self.train_questions,
            "estimator": self.estimator.to_dict() if self.estimator is not None else None,
            "curves": self.curves.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunedModel:
        """Rebuild from :meth:`to_dict` data; a ConfigError for another format or kind."""
        if data.get("format") != FORMAT_VERSION:
            raise ConfigError(f"not a tuned controller of format {FORMAT_VERSION}: {data.get('format')!r}")
        kind = data.get("kind")
        if kind not in ("buckets", "pooled"):
            raise ConfigError(f"unknown tuned controller kind {kind!r}")
        estimator = data.get("estimator")
        return cls(
            kind=kind,
            curves=DifficultyCurves.from_dict(data["curves"]),
            estimator=LearnedEstimator.from_dict(estimator) if estimator else None,
            metric=str(data.get("metric", "f1")),
            held_out={str(k): float(v) for k, v in dict(data.get("held_out") or {}).items()},
            train_questions=int(data.get("train_questions", 0)),
        )

    def save(self, path: Path) -> None:
        """Write the tuned controller as JSON; a ConfigError when the path is not writable."""
        try:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write tuned controller {path}: {exc.strerror or exc}") from exc

    @classmethod
    def load(cls, path: Path) -> TunedModel:
        """Read a tuned controller; a ConfigError for a missing, unreadable or invalid file."""
        from leadline.budgets.fitted import read_json  # one reader for both controller files

        data = read_json(path, "tuned controller")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path} is not a valid tuned controller: {exc}") from exc


__all__ = ["FORMAT_VERSION", "TunedKind", "TunedModel"]
