"""Allocation policies compared counterfactually on one outcome table.

Every dev question was run at every budget point, so any policy that picks one budget point per question
can be scored without running anything again:

* uniform — every question at the same point;
* adaptive — a difficulty estimator and gain curves fitted on the *train* rows predict each dev
  question's quality at each point (curves conditioned on the difficulty score, one per difficulty
  bucket, or the train mean per point when difficulty predicts nothing); with ``curves="auto"`` the
  model is chosen by the quality its allocations reach on held-out train questions (cross-validation by
  question), never by the dev rows; the batch greedy picks points under the uniform policy's total cost;
* oracle — the same greedy on the questions' actual outcomes.

Figures: quality at equal mean compute, the compute each policy needs to match the best uniform quality
(the efficiency ratio), and the share of the uniform-to-oracle gap the adaptive policy closes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from leadline.budgets.allocation import AllocationGrid, PreparedBatch, hull_profiles
from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeTable
from leadline.evals.train_fit import (
    FloatArray,
    Point,
    cheapest_point,
    first_rows,
    fit_estimator,
    fit_train,
    point_costs,
    row_difficulty,
    train_difficulties,
)


@dataclass(frozen=True)
class PointResult:
    """The three policies at the mean compute of one uniform budget point."""

    point: Point
    compute: float
    uniform: float
    adaptive: float
    oracle: float
    adaptive_compute: float
    oracle_compute: float

    @property
    def gap_closed(self) -> float:
        """Share of the uniform-to-oracle quality gap the adaptive policy closes here (NaN with no gap)."""
        gap = self.oracle - self.uniform
        return (self.adaptive - self.uniform) / gap if gap > 1e-9 else float("nan")


@dataclass(frozen=True)
class TableReport:
    """The three policies compared on one outcome table: per budget point and compute to match."""

    questions: int
    budget_points: int
    metric: str
    points: list[PointResult]
    best_uniform: float
    best_uniform_compute: float
    adaptive_compute_to_match: float
    oracle_compute_to_match: float
    notes: list[str] = field(default_factory=list)

    @property
    def gap_closed(self) -> float:
        """Mean share of the uniform-to-oracle gap closed over the points that have a gap."""
        values = [p.gap_closed for p in self.points if not math.isnan(p.gap_closed)]
        return float(np.mean(values)) if values else float("nan")

    @property
    def adaptive_efficiency(self) -> float:
        """Compute of the best uniform point over what adaptive needs to match its quality."""
        return self.best_uniform_compute / self.adaptive_compute_to_match

    @property
    def oracle_efficiency(self) -> float:
        """Compute of the best uniform point over what the oracle needs to match its quality."""
        return self.best_uniform_compute / self.oracle_compute_to_match

    def describe(self) -> str:
        """The report as text, one line per budget point, then compute to match and notes."""
        lines = [
            f"outcome table: {self.questions} dev questions x {self.budget_points} budget points"
            f" ({self.metric})"
        ]
        for p in self.points:
            lines.append(
                f"  at T={p.point[0]},S={p.point[1]},{p.point[2]} (compute {p.compute:.0f}):"
                f" uniform {p.uniform:.3f}  adaptive {p.adaptive:.3f}  oracle {p.oracle:.3f}"
                f"  gap closed {p.gap_closed:.1%}"
            )
        lines.append(
            f"  compute to match the best uniform quality {self.best_uniform:.3f}"
            f" ({self.best_uniform_compute:.0f}):"
            f" adaptive {self.adaptive_compute_to_match:.0f} ({self.adaptive_efficiency:.2f}x),"
            f" oracle {self.oracle_compute_to_match:.0f} ({self.oracle_efficiency:.2f}x)"
        )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _matrix(table: OutcomeTable, points: Sequence[Point], metric: str) -> tuple[list[str], FloatArray]:
    ids = table.question_ids()
    index = {q: i for i, q in enumerate(ids)}
    col = {p: j for j, p in enumerate(points)}
    out = np.full((len(ids), len(points)), np.nan)
    for r in table:
        if r.point in col:
            out[index[r.question_id], col[r.point]] = r.score(metric)
    return ids, out


def predict_quality(
    train: OutcomeTable,
    dev: OutcomeTable,
    points: Sequence[Point],
    metric: str,
    notes: list[str],
    *,
    curves: str = "conditioned",
) -> FloatArray:
    """Predicted quality of each dev question at each point, from models fitted on train rows only.

    ``curves``: ``"conditioned"`` (one family whose scales move with the difficulty score),
    ``"buckets"`` (one curve per difficulty bucket) or ``"means"`` (the train mean at each point, the
    same for every question: a difficulty-blind allocation).
    """
    if curves == "means":
        return np.tile(_point_means(train, points, metric), (len(dev.question_ids()), 1))
    fit = fit_train(train, points, metric)
    if fit.estimator is None:
        notes.append("difficulty estimator could not be fitted; every question looks alike")
    dev_first = first_rows(dev)
    dev_ids = dev.question_ids()
    d_dev = [row_difficulty(fit.estimator, dev_first[q]) for q in dev_ids]
    fitted: Sequence[GainCurve]
    pred = np.zeros((len(dev_ids), len(points)))
    for shape in sorted({p[2] for p in points}):
        rows = [r for r in train if r.shape == shape]
        cols = [j for j, p in enumerate(points) if p[2] == shape]
        try:
            if curves == "conditioned":
                # One family for all questions, its scales moving with the difficulty score.
                fitted = fit.conditioned_curves(rows).curves_for([[d.score] for d in d_dev])
            else:
                buckets = fit.bucket_curves(rows)
                fitted = [buckets.curve_for(d) for d in d_dev]
            for i, curve in enumerate(fitted):
                for j in cols:
                    pred[i, j] = float(curve.value(points[j][0], points[j][1]))
        except ConfigError as exc:
            # Too few budget points for any curve family: the train mean at each point, per difficulty half.
            notes.append(f"{shape}: no gain curve fitted ({exc}); using train means per point")
            for j in cols:
                scores = [r.score(metric) for r in train if r.point == points[j]]
                pred[:, j] = float(np.mean(scores)) if scores else 0.0
    return pred


def _point_means(train: OutcomeTable, points: Sequence[Point], metric: str) -> FloatArray:
    means = []
    for point in points:
        scores = [r.score(metric) for r in train if r.point == point]
        means.append(float(np.mean(scores)) if scores else 0.0)
    return np.array(means)


CURVE_MODELS = ("conditioned", "buckets", "means")


def choose_curves(
    train: OutcomeTable,
    points: Sequence[Point],
    costs: FloatArray,
    metric: str,
    *,
    folds: int = 4,
    seed: int = 0,
    models: Sequence[str] = CURVE_MODELS,
) -> tuple[str, dict[str, float]]:
    """The curve model whose allocations score best on held-out train questions.

    The complete train questions are split into ``folds`` groups (seeded); each model is fitted on the
    other groups and its batch greedy is scored on the held-out group's actual outcomes at the mean
    compute of every budget point. Ties go to the simpler model (``means``, then ``buckets``).
    Returns the chosen name and each model's mean held-out quality.
    """
    unknown = set(models) - set(CURVE_MODELS)
    if unknown or not models:
        raise ConfigError(f"curve models must be among {', '.join(CURVE_MODELS)}, got {list(models)}")
    complete = train.complete(points)
    ids = complete.question_ids()
    if len(ids) < 2 * folds:
        return "means", {}
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[i]: k % folds for k, i in enumerate(order)}
    candidates = [name for name in CURVE_MODELS if name in models]
    scores: dict[str, list[float]] = {name: [] for name in candidates}
    for k in range(folds):
        fit = OutcomeTable([r for r in train if fold_of.get(r.question_id) != k])
        held = OutcomeTable([r for r in complete if fold_of[r.question_id] == k])
        _, actual = _matrix(held, points, metric)
        for name in candidates:
            pred = predict_quality(fit, held, points, metric, [], curves=name)
            prepared, base = _prepared(pred, costs)
            for j in range(len(points)):
                total = float(costs[j]) * actual.shape[0]
                scores[name].append(_run(prepared, base, total, actual, costs)[0])
    means = {name: float(np.mean(v)) for name, v in scores.items()}
    best = max(reversed(candidates), key=means.__getitem__)  # first maximum: the simpler model
    return best, means


def _prepared(values: FloatArray, costs: FloatArray) -> tuple[PreparedBatch, float]:
    n, m = values.shape
    # The option index rides in the "tokens" slot so each chosen hull vertex maps back to its point.
    profiles, _ = hull_profiles(values, costs, np.arange(m, dtype=np.float64), np.zeros(m))
    prepared = PreparedBatch(
        n=n,
        group_of=np.arange(n, dtype=np.int64),
        size=np.ones(n),
        profiles=profiles,
        cost=CostModel(),
        grid=AllocationGrid(),
    )
    return prepared, float(profiles.cost[:, 0].sum())


def _run(
    prepared: PreparedBatch, base: float, total: float, actual: FloatArray, costs: FloatArray
) -> tuple[float, float]:
    plan = prepared.greedy(max(0.0, total - base))
    idx = np.array([q.tokens for q in plan.queries], dtype=np.int64)
    rows = np.arange(actual.shape[0])
    return float(actual[rows, idx].mean()), float(costs[idx].mean())


def _compute_to_match(
    prepared: PreparedBatch, base: float, target: float, actual: FloatArray, costs: FloatArray
) -> float:
    n = actual.shape[0]
    hi = float(costs.max()) * n
    if _run(prepared, base, hi, actual, costs)[0] < target - 1e-12:
        return float("inf")
    lo = base
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if _run(prepared, base, mid, actual, costs)[0] >= target - 1e-12:
            hi = mid
        else:
            lo = mid
    return _run(prepared, base, hi, actual, costs)[1]


def evaluate_table(
    table: OutcomeTable,
    *,
    cost: CostModel | None = None,
    metric: str = "f1",
    train_split: str = "train",
    dev_split: str = "dev",
    curves: str = "auto",
) -> TableReport:
    """Uniform, adaptive and oracle on the dev rows; models fitted on the train rows.

    ``curves`` is one of :data:`CURVE_MODELS`, or ``"auto"`` to choose among them by cross-validation
    on the train questions (:func:`choose_curves`).
    """
    cost = cost or CostModel()
    points = table.budget_points()
    if len(points) < 2:
        raise ConfigError(f"need at least 2 budget points to compare policies, the table has {len(points)}")
    dev = table.split(dev_split).complete(points)
    train = table.split(train_split)
    if not len(dev):
        raise ConfigError(f"no {dev_split} question has a row at every budget point")
    if not len(train):
        raise ConfigError(f"no {train_split} rows to fit on")
    notes: list[str] = []
    ids, actual = _matrix(dev, points, metric)
    if curves not in (*CURVE_MODELS, "auto"):
        raise ConfigError(f"curves must be one of {', '.join(CURVE_MODELS)} or 'auto', got {curves!r}")
    costs = point_costs(points, cost)
    if curves == "auto":
        curves, held_out = choose_curves(train, points, costs, metric)
        scored = ", ".join(f"{k} {v:.3f}" for k, v in held_out.items()) or "too few train questions"
        notes.append(f"curve model chosen on held-out train questions: {curves} ({scored})")
    pred = predict_quality(train, dev, points, metric, notes, curves=curves)
    adaptive, base = _prepared(pred, costs)
    oracle, _ = _prepared(actual, costs)
    n = len(ids)
    results: list[PointResult] = []
    for j, point in enumerate(points):
        total = float(costs[j]) * n
        q_a, c_a = _run(adaptive, base, total, actual, costs)
        q_o, c_o = _run(oracle, base, total, actual, costs)
        results.append(PointResult(point, float(costs[j]), float(actual[:, j].mean()), q_a, q_o, c_a, c_o))
    best = max(results, key=lambda r: (r.uniform, -r.compute))
    return TableReport(
        questions=n,
        budget_points=len(points),
        metric=metric,
        points=results,
        best_uniform=best.uniform,
        best_uniform_compute=best.compute,
        adaptive_compute_to_match=_compute_to_match(adaptive, base, best.uniform, actual, costs),
        oracle_compute_to_match=_compute_to_match(oracle, base, best.uniform, actual, costs),
        notes=notes,
    )


__all__ = [
    "CURVE_MODELS",
    "PointResult",
    "TableReport",
    "cheapest_point",
    "choose_curves",
    "evaluate_table",
    "fit_estimator",
    "point_costs",
    "predict_quality",
    "train_difficulties",
]
