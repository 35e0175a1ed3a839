"""Allocation: turn gain curves and a budget into tokens and searches per query.

* :func:`allocate` — one query, the best point within its budget down to a stopping price (here).
* :func:`~leadline.budgets.batch_allocation.allocate_batch` — all queries of a batch under one total
  budget, ``method="greedy"`` (default), ``"heap"`` (the literal heap, the same plan) or
  ``"lagrangian"`` (the dual); see :mod:`leadline.budgets.batch_allocation`.

Both work on cost profiles (:mod:`leadline.budgets.profiles`). Bad input at the edge (negative or NaN
budgets) raises :class:`~leadline.errors.InvalidBudgetError`. The batch names are re-exported here, so
``from leadline.budgets.allocation import allocate_batch`` keeps working.
"""

from __future__ import annotations

import numpy as np

from leadline.budgets.batch_allocation import BatchMethod, Plan, PreparedBatch, allocate_batch, prepare_batch
from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve
from leadline.budgets.profiles import (
    AllocationGrid,
    Profiles,
    QueryPlan,
    check_budget,
    cost_profiles,
    hull_profiles,
    uniform_split,
)
from leadline.errors import InvalidBudgetError

__all__ = [
    "AllocationGrid",
    "BatchMethod",
    "Plan",
    "PreparedBatch",
    "Profiles",
    "QueryPlan",
    "allocate",
    "allocate_batch",
    "check_budget",
    "cost_profiles",
    "hull_profiles",
    "prepare_batch",
    "uniform_split",
]


def allocate(
    curve: GainCurve,
    budget: float,
    *,
    cost: CostModel | None = None,
    grid: AllocationGrid | None = None,
    price: float = 0.0,
    max_tokens: float | None = None,
    max_searches: int | None = None,
) -> QueryPlan:
    """One query's tokens and searches: the point of best ``quality − price·cost`` within ``budget``.

    Buying hull increments greedily while their gain per cost is at least ``price`` reaches the same
    point when the budget does not bind; when it does, the best affordable frontier point is taken.
    ``max_tokens`` / ``max_searches`` are per-axis caps (a run's hard limits).
    """
    budget = check_budget("budget", budget)
    price = check_budget("price", price)
    cost = cost or CostModel()
    grid = grid or AllocationGrid()
    tokens, searches = grid.axes(cost)
    t = tokens[:, None]
    s = searches[None, :]
    values = np.asarray(curve.value(t, s), dtype=np.float64)
    values = np.broadcast_to(values, (len(tokens), len(searches)))
    if not np.all(np.isfinite(values)):
        raise InvalidBudgetError("the gain curve gave a non-finite value")
    c = t + cost.search_cost_tokens * s
    ok = c <= budget + 1e-9
    if max_tokens is not None:
        ok &= t <= max_tokens + 1e-9
    if max_searches is not None:
        ok &= s <= max_searches
    objective = np.where(ok, values - price * c, -np.inf)
    # Ties go to the cheaper point: never spend for nothing.
    flat_obj = objective.reshape(-1)
    flat_cost = np.broadcast_to(c, objective.shape).reshape(-1)
    best = np.lexsort((flat_cost, -flat_obj))[0]
    i, j = np.unravel_index(best, objective.shape)
    plan_tokens, plan_searches = round(float(tokens[i])), int(searches[j])
    return QueryPlan(
        tokens=plan_tokens,
        searches=plan_searches,
        cost=float(cost.cost(float(tokens[i]), float(searches[j]))),
        expected_quality=float(values[i, j]),
        reason="forced answer: no budget" if plan_tokens == 0 and plan_searches == 0 else "greedy to price",
    )
