"""Fit a tuned controller (:class:`~leadline.budgets.tuned.TunedModel`) on an outcome table's train rows.

The same fitting path as the counterfactual evaluation (:mod:`leadline.evals.train_fit`), and the same
cross-validated choice between difficulty buckets and one pooled curve
(:func:`leadline.evals.policies.choose_curves`).
"""

from __future__ import annotations

from leadline.budgets.cost import CostModel
from leadline.budgets.tuned import TunedModel
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeTable
from leadline.evals.policies import choose_curves
from leadline.evals.train_fit import fit_train, point_costs, pooled_curves


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
    questions = len(train.question_ids())
    if chosen == "buckets":
        fit = fit_train(train, points, metric)
        if fit.estimator is not None:
            return TunedModel("buckets", fit.bucket_curves(rows), fit.estimator, metric, held_out, questions)
    return TunedModel("pooled", pooled_curves(rows, metric), None, metric, held_out, questions)


__all__ = ["fit_tuned"]
