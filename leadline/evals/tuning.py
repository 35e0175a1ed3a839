"""Fit a tuned controller (:class:`~leadline.budgets.tuned.TunedModel`) on an outcome table's train rows.

The same estimator and curves the counterfactual evaluation fits, and the same cross-validated choice
between difficulty buckets and one pooled curve (:func:`leadline.evals.policies.choose_curves`).
"""

from __future__ import annotations

from leadline.budgets.adaptive import DifficultyCurves
from leadline.budgets.cost import CostModel
from leadline.budgets.fitting import BucketedCurves
from leadline.budgets.tuned import TunedModel
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeTable
from leadline.evals.policies import (
    cheapest_point,
    choose_curves,
    fit_estimator,
    point_costs,
    train_difficulties,
)


def fit_tuned(table: OutcomeTable, *, cost: CostModel | None = None, metric: str = "f1") -> TunedModel:
    """Fit a tuned controller on the train rows of an outcome table (``leadline.evals.outcomes``)."""
    cost = cost or CostModel()
    train = table.split("train")
    points = train.budget_points()
    if len(points) < 2:
        raise ConfigError(f"need train rows at 2 or more budget points to tune, found {len(points)}")
    costs = point_costs(points, cost)
    chosen, held_out = choose_curves(train, points, costs, metric, models=("buckets", "means"))
    rows = list(train)
    tokens = [r.tokens for r in rows]
    searches = [r.searches for r in rows]
    quality = [r.score(metric) for r in rows]
    groups = [r.question_id for r in rows]
    questions = len(train.question_ids())
    if chosen == "buckets":
        estimator = fit_estimator(train, metric, cheapest_point(points))
        if estimator is not None:
            difficulties = train_difficulties(estimator, train)
            curves = DifficultyCurves.fit(
                [difficulties[g] for g in groups], tokens, searches, quality, groups
            )
            return TunedModel("buckets", curves, estimator, metric, held_out, questions)
    pooled = BucketedCurves.fit(["all"] * len(rows), tokens, searches, quality, groups)
    curves = DifficultyCurves(edges=(), curves=BucketedCurves(curves={}, default=pooled.default))
    return TunedModel("pooled", curves, None, metric, held_out, questions)


__all__ = ["fit_tuned"]
