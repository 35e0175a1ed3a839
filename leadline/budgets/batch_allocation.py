"""Batch allocation: every query of a batch under one total budget.

The greedy buys every query's hull increments (:mod:`leadline.budgets.profiles`) in decreasing gain per
cost — a heap's pop order, computed with one sort; ``method="heap"`` is the literal heap and gives the
same plan; ``method="lagrangian"`` is the dual, bisection on the price μ, each query buying every
increment whose gain per cost is at least μ. Queries with identical curves are allocated as one group, so
they get identical shares. A query without a usable curve (``None``, a curve that raises or gives NaN)
gets the uniform share and is marked ``fallback`` (logged), so one bad query never crashes a batch.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve
from leadline.budgets.profiles import (
    EPS,
    AllocationGrid,
    FloatArray,
    IntArray,
    Profiles,
    QueryPlan,
    check_budget,
    cost_profiles,
    uniform_split,
)
from leadline.errors import InvalidBudgetError

__all__ = ["METHODS", "BatchMethod", "Plan", "PreparedBatch", "allocate_batch", "prepare_batch"]

log = logging.getLogger(__name__)

BatchMethod = Literal["greedy", "heap", "lagrangian"]
METHODS: tuple[BatchMethod, ...] = ("greedy", "heap", "lagrangian")


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A batch's allocation."""

    queries: tuple[QueryPlan, ...]
    budget: float
    price: float
    """Marginal gain per unit of cost of the last increment bought (the shadow price of the budget)."""
    method: str = "greedy"
    fallbacks: int = 0

    @property
    def spent(self) -> float:
        """Total cost of the planned queries."""
        return float(sum(q.cost for q in self.queries))

    @property
    def unspent(self) -> float:
        """What the plan leaves of the budget."""
        return max(0.0, self.budget - self.spent)

    @property
    def expected_quality(self) -> float:
        """Mean expected quality over the batch."""
        if not self.queries:
            return 0.0
        return float(sum(q.expected_quality for q in self.queries) / len(self.queries))


@dataclass
class PreparedBatch:
    """A batch's curves reduced to hull profiles once, grouped by identical curve; allocate at any budget.

    Queries whose curve is missing or unusable are listed in ``fallback``; they get the uniform share.
    """

    n: int
    group_of: IntArray
    """Group of each query, −1 for a fallback query."""
    size: FloatArray
    """Queries per group."""
    profiles: Profiles | None
    cost: CostModel
    grid: AllocationGrid
    fallback: list[int] = field(default_factory=list)

    def _split(self, total_budget: float) -> tuple[float, float]:
        total_budget = check_budget("total_budget", total_budget)
        share = total_budget / self.n if self.n else 0.0
        return total_budget - share * len(self.fallback), share

    def greedy(self, total_budget: float, *, price: float = 0.0) -> Plan:
        """Buy increments in decreasing gain per cost (a max-heap's pop order, computed with one sort).

        An increment that does not fit is skipped and closes its group, which keeps the total expected
        quality monotone in the budget. Increments below ``price`` are never bought.
        """
        price = check_budget("price", price)
        budget, share = self._split(total_budget)
        p = self.profiles
        if p is None:
            return self._finish(np.zeros(0, dtype=np.int64), 0.0, "greedy", share, total_budget)
        slopes = p.slopes
        g_count, k_count = slopes.shape
        seg_cost = np.diff(p.cost, axis=1) * self.size[:, None]
        flat_slope = slopes.reshape(-1)
        valid = np.flatnonzero(flat_slope >= max(price, EPS))
        grp, seg = np.divmod(valid, k_count)
        # Rows are laid out group-major with segments in order, so a stable sort on the slope alone
        # breaks ties by (group, segment): the pop order of a heap keyed on (−slope, group, segment).
        order = np.argsort(-flat_slope[valid], kind="stable")
        grp, seg = grp[order], seg[order]
        ordered_slopes = flat_slope[valid][order]
        costs = seg_cost[grp, seg]
        cum = np.cumsum(costs)
        prefix = int(np.searchsorted(cum, budget + 1e-9, side="right"))
        chosen = np.zeros(g_count, dtype=np.int64)
        if prefix:
            np.maximum.at(chosen, grp[:prefix], seg[:prefix] + 1)
        left = budget - (float(cum[prefix - 1]) if prefix else 0.0)
        last_price = float(ordered_slopes[prefix - 1]) if prefix else 0.0
        if prefix < len(grp):
            # The skip phase: the next increment did not fit; smaller later ones still may.
            closed = np.zeros(g_count, dtype=bool)
            suffix_min = np.minimum.accumulate(costs[::-1])[::-1]
            for pos in range(prefix, len(grp)):
                if left < suffix_min[pos] - 1e-9:
                    break
                g = int(grp[pos])
                if closed[g] or chosen[g] != seg[pos]:
                    closed[g] = True
                    continue
                if costs[pos] <= left + 1e-9:
                    left -= float(costs[pos])
                    chosen[g] = seg[pos] + 1
                    last_price = float(ordered_slopes[pos])
                else:
                    closed[g] = True
        return self._finish(chosen, last_price, "greedy", share, total_budget)

    def heap(self, total_budget: float, *, price: float = 0.0) -> Plan:
        """The same greedy with a literal max-heap of each group's next increment (the reference)."""
        price = check_budget("price", price)
        budget, share = self._split(total_budget)
        p = self.profiles
        if p is None:
            return self._finish(np.zeros(0, dtype=np.int64), 0.0, "heap", share, total_budget)
        slopes = p.slopes
        floor = max(price, EPS)
        seg_cost = np.diff(p.cost, axis=1) * self.size[:, None]
        chosen = np.zeros(slopes.shape[0], dtype=np.int64)
        heap = [
            (-float(slopes[g, 0]), g, 0)
            for g in range(slopes.shape[0])
            if slopes.shape[1] and slopes[g, 0] >= floor
        ]
        heapq.heapify(heap)
        left, last_price = budget, 0.0
        while heap:
            neg_slope, g, k = heapq.heappop(heap)
            if seg_cost[g, k] > left + 1e-9:
                continue  # does not fit: this group is closed
            left -= float(seg_cost[g, k])
            chosen[g] = k + 1
            last_price = -neg_slope
            if k + 1 < slopes.shape[1] and slopes[g, k + 1] >= floor:
                heapq.heappush(heap, (-float(slopes[g, k + 1]), g, k + 1))
        return self._finish(chosen, last_price, "heap", share, total_budget)

    def lagrangian(self, total_budget: float, *, price: float = 0.0, iterations: int = 60) -> Plan:
        """The dual: bisect the price μ until buying every increment worth ≥ μ fits the budget."""
        price = check_budget("price", price)
        budget, share = self._split(total_budget)
        p = self.profiles
        if p is None:
            return self._finish(np.zeros(0, dtype=np.int64), 0.0, "lagrangian", share, total_budget)
        slopes = p.slopes
        cum_cost = (p.cost - p.cost[:, :1]) * self.size[:, None]
        rows = np.arange(slopes.shape[0])

        def take(mu: float) -> tuple[IntArray, float]:
            # Slopes fall along each hull, so the increments worth >= mu are a prefix of each row.
            k = np.sum(slopes >= mu, axis=1)
            return k, float(cum_cost[rows, k].sum())

        lo = max(price, EPS)
        k, spend = take(lo)
        if spend <= budget + 1e-9:
            return self._finish(k, lo if k.any() else 0.0, "lagrangian", share, total_budget)
        hi = float(np.max(slopes)) * 1.0001 + EPS
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if take(mid)[1] <= budget + 1e-9:
                hi = mid
            else:
                lo = mid
        k, _ = take(hi)
        return self._finish(k, hi, "lagrangian", share, total_budget)

    def _finish(self, chosen: IntArray, price: float, method: str, share: float, total_budget: float) -> Plan:
        plans: list[QueryPlan] = []
        fallback_plan = uniform_split(share, self.cost, self.grid) if self.fallback else None
        p = self.profiles
        for i in range(self.n):
            g = int(self.group_of[i])
            if g < 0 or p is None:
                assert fallback_plan is not None
                plans.append(fallback_plan)
                continue
            k = int(chosen[g])
            t, s = float(p.tokens[g, k]), float(p.searches[g, k])
            plans.append(
                QueryPlan(
                    tokens=round(t),
                    searches=int(s),
                    cost=float(p.cost[g, k]),
                    expected_quality=float(p.value[g, k]),
                    reason="forced answer: no budget" if t == 0 and s == 0 else method,
                )
            )
        return Plan(
            queries=tuple(plans),
            budget=float(total_budget),
            price=price,
            method=method,
            fallbacks=len(self.fallback),
        )


def _group(curves: Sequence[GainCurve | None]) -> tuple[list[GainCurve], IntArray, list[int]]:
    uniques: dict[object, int] = {}
    unique_curves: list[GainCurve] = []
    group_of = np.full(len(curves), -1, dtype=np.int64)
    bad: list[int] = []
    for i, curve in enumerate(curves):
        if curve is None:
            bad.append(i)
            continue
        try:
            key: object = curve
            hash(key)
        except TypeError:
            key = id(curve)
        if key not in uniques:
            uniques[key] = len(unique_curves)
            unique_curves.append(curve)
        group_of[i] = uniques[key]
    return unique_curves, group_of, bad


def _usable_profiles(
    curves: list[GainCurve], cost: CostModel, grid: AllocationGrid
) -> tuple[Profiles | None, npt.NDArray[np.bool_]]:
    """Profiles of the curves that work, and a mask of those that raised or gave non-finite values."""
    broken = np.zeros(len(curves), dtype=bool)
    if not curves:
        return None, broken
    try:
        profiles, raw = cost_profiles(curves, cost, grid)
        broken = ~np.all(np.isfinite(raw), axis=1)
    except Exception:  # one broken curve must not sink the batch: find it curve by curve
        log.warning("a gain curve failed in batch evaluation; isolating it", exc_info=True)
        for g, curve in enumerate(curves):
            try:
                _, raw = cost_profiles([curve], cost, grid)
                broken[g] = not bool(np.all(np.isfinite(raw)))
            except Exception:
                broken[g] = True
        keep = [c for g, c in enumerate(curves) if not broken[g]]
        return (cost_profiles(keep, cost, grid)[0] if keep else None), broken
    if broken.any():
        keep_idx = np.flatnonzero(~broken)
        if not len(keep_idx):
            return None, broken
        profiles = Profiles(
            cost=profiles.cost[keep_idx],
            value=profiles.value[keep_idx],
            tokens=profiles.tokens[keep_idx],
            searches=profiles.searches[keep_idx],
            vertices=profiles.vertices[keep_idx],
        )
    return profiles, broken


def prepare_batch(
    curves: Sequence[GainCurve | None], *, cost: CostModel | None = None, grid: AllocationGrid | None = None
) -> PreparedBatch:
    """Reduce a batch's curves to hull profiles once (identical curves are evaluated once)."""
    cost = cost or CostModel()
    grid = grid or AllocationGrid()
    unique, group_of, bad = _group(curves)
    profiles, broken = _usable_profiles(unique, cost, grid)
    if broken.any():
        remap = np.cumsum(~broken) - 1
        for i in range(len(curves)):
            g = int(group_of[i])
            if g < 0:
                continue
            if broken[g]:
                bad.append(i)
                group_of[i] = -1
            else:
                group_of[i] = remap[g]
        log.warning("%d gain curve(s) raised or gave non-finite values", int(broken.sum()))
    if bad:
        log.warning(
            "%d of %d queries have no usable gain curve; they get the uniform share", len(bad), len(curves)
        )
    n_groups = 0 if profiles is None else profiles.cost.shape[0]
    size = np.bincount(group_of[group_of >= 0], minlength=n_groups).astype(np.float64)
    return PreparedBatch(
        n=len(curves),
        group_of=group_of,
        size=size,
        profiles=profiles,
        cost=cost,
        grid=grid,
        fallback=sorted(bad),
    )


def allocate_batch(
    curves: Sequence[GainCurve | None],
    total_budget: float,
    *,
    method: BatchMethod = "greedy",
    cost: CostModel | None = None,
    grid: AllocationGrid | None = None,
    price: float = 0.0,
) -> Plan:
    """Every query's tokens and searches under one total budget, by marginal gain per cost.

    ``method``: ``"greedy"`` (one sort), ``"heap"`` (the literal heap: the same plan, slower, the
    reference) or ``"lagrangian"`` (bisection on the price). All three are optimal for concave curves.
    """
    if method not in METHODS:
        raise InvalidBudgetError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    check_budget("total_budget", total_budget)
    prepared = prepare_batch(curves, cost=cost, grid=grid)
    solve = {"greedy": prepared.greedy, "heap": prepared.heap, "lagrangian": prepared.lagrangian}[method]
    return solve(total_budget, price=price)
