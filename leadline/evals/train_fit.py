"""The one fitting path: a difficulty estimator and gain curves fitted on an outcome table's train rows.

Both consumers of an outcome table fit the same things the same way: the counterfactual policy
comparison (:mod:`leadline.evals.policies`) predicts dev questions' quality from them, and tuning
(:mod:`leadline.evals.tuning`) saves them as a controller. A logistic estimator learns "fails at the
cheapest budget point" from the train questions' features; its scores place each train question in a
difficulty bucket (or condition one curve family on the score); curves are fitted per bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leadline.budgets.adaptive import DifficultyCurves
from leadline.budgets.conditioned import ConditionedCurves, fit_conditioned
from leadline.budgets.cost import CostModel
from leadline.budgets.difficulty import Difficulty, LearnedEstimator, question_type
from leadline.budgets.fitting import BucketedCurves
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeRow, OutcomeTable

__all__ = [
    "FloatArray",
    "Point",
    "TrainFit",
    "cheapest_point",
    "first_rows",
    "fit_estimator",
    "fit_train",
    "point_costs",
    "pooled_curves",
    "row_difficulty",
    "train_difficulties",
]

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
Point = tuple[int, int, str]


def cheapest_point(points: Sequence[Point]) -> Point:
    """The smallest budget point: "fails at a small budget" is measured there."""
    return min(points, key=lambda p: (p[0] + p[1], p))


def point_costs(points: Sequence[Point], cost: CostModel) -> FloatArray:
    """Token-equivalent cost of each budget point."""
    return np.array([cost.cost(float(p[0]), float(p[1])) for p in points])


def first_rows(table: OutcomeTable) -> dict[str, OutcomeRow]:
    """Each question's first row (every row of a question carries the same features)."""
    first: dict[str, OutcomeRow] = {}
    for r in table:
        first.setdefault(r.question_id, r)
    return first


def fit_estimator(train: OutcomeTable, metric: str, small: Point) -> LearnedEstimator | None:
    """Logistic "fails at the small budget point" on the train questions' features."""
    rows = [r for r in train if r.point == small]
    if not rows:
        return None
    names = tuple(sorted({k for r in rows for k in r.features}))
    failed = [r.score(metric) < 0.5 for r in rows]
    try:
        return LearnedEstimator(feature_names=names).fit([dict(r.features) for r in rows], failed)
    except ConfigError as exc:
        log.warning("difficulty estimator not fitted: %s", exc)
        return None


def row_difficulty(estimator: LearnedEstimator | None, row: OutcomeRow) -> Difficulty:
    """A row's estimated difficulty; without an estimator every question looks alike (0.5, unsure)."""
    features = dict(row.features)
    qtype = question_type(features)
    if estimator is None:
        return Difficulty(score=0.5, uncertainty=1.0, qtype=qtype, features=features)
    return estimator.estimate_features(features, qtype)


def train_difficulties(estimator: LearnedEstimator | None, table: OutcomeTable) -> dict[str, Difficulty]:
    """Each question's estimated difficulty (from its first row's features)."""
    return {q: row_difficulty(estimator, r) for q, r in first_rows(table).items()}


@dataclass(frozen=True)
class TrainFit:
    """The difficulty side of a fit on train rows; the curve fits below take their rows from it."""

    estimator: LearnedEstimator | None
    """None when it could not be fitted (then every question looks alike)."""
    difficulties: dict[str, Difficulty]
    """Each train question's estimated difficulty."""
    metric: str

    def bucket_curves(self, rows: Sequence[OutcomeRow]) -> DifficultyCurves:
        """Gain curves per difficulty bucket, fitted on ``rows`` (train rows, e.g. of one shape)."""
        return DifficultyCurves.fit(
            [self.difficulties[r.question_id] for r in rows],
            [r.tokens for r in rows],
            [r.searches for r in rows],
            [r.score(self.metric) for r in rows],
            [r.question_id for r in rows],
        )

    def conditioned_curves(self, rows: Sequence[OutcomeRow]) -> ConditionedCurves:
        """One curve family whose scales move with the difficulty score, fitted on ``rows``."""
        return fit_conditioned(
            [[self.difficulties[r.question_id].score] for r in rows],
            [r.tokens for r in rows],
            [r.searches for r in rows],
            [r.score(self.metric) for r in rows],
            [r.question_id for r in rows],
        )


def fit_train(train: OutcomeTable, points: Sequence[Point], metric: str) -> TrainFit:
    """Fit the difficulty estimator on ``train`` (failure at the cheapest of ``points``) and score it."""
    estimator = fit_estimator(train, metric, cheapest_point(points))
    return TrainFit(estimator, train_difficulties(estimator, train), metric)


def pooled_curves(rows: Sequence[OutcomeRow], metric: str) -> DifficultyCurves:
    """One gain curve for every question (difficulty ignored), fitted on ``rows``."""
    pooled = BucketedCurves.fit(
        ["all"] * len(rows),
        [r.tokens for r in rows],
        [r.searches for r in rows],
        [r.score(metric) for r in rows],
        [r.question_id for r in rows],
    )
    return DifficultyCurves(edges=(), curves=BucketedCurves(curves={}, default=pooled.default))
