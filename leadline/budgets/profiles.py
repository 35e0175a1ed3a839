"""What the allocators work on: the grid of (T, S) points, a query's plan, and cost profiles.

Each gain curve is reduced to its *cost profile*: on the grid of (T, S) points the allocator may choose,
the best quality reachable at each cost ``T + λ·S`` (the best split between the axes), and the upper
concave hull of that frontier. The hull's segments are the increments the greedy allocators buy, in
order of marginal gain per unit of cost, which is optimal for concave curves and sound for the others
(a product curve gains nothing from a search alone, so the hull bundles the first search with tokens
rather than stalling at zero marginal gain). Single-query allocation is :mod:`leadline.budgets.allocation`;
batch allocation is :mod:`leadline.budgets.batch_allocation`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve, curve_values
from leadline.errors import InvalidBudgetError

__all__ = [
    "AllocationGrid",
    "FloatArray",
    "IntArray",
    "Profiles",
    "QueryPlan",
    "check_budget",
    "cost_profiles",
    "hull_profiles",
    "uniform_split",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
EPS = 1e-12
"""Gains per cost at or below this count as nothing."""


@dataclass(frozen=True, kw_only=True)
class AllocationGrid:
    """The (T, S) points the allocator may choose: tokens in steps, searches in whole calls."""

    token_step: float = 250.0
    """Target token increment, adjusted so λ is a whole number of steps (costs fall on a lattice)."""
    max_tokens: float = 16384.0
    max_searches: int = 16

    def __post_init__(self) -> None:
        for name in ("token_step", "max_tokens"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidBudgetError(f"grid {name} must be positive and finite, got {value!r}")
        if self.max_searches < 0:
            raise InvalidBudgetError(f"grid max_searches must be non-negative, got {self.max_searches!r}")

    def axes(self, cost: CostModel) -> tuple[FloatArray, FloatArray]:
        """The token and search values of the grid, tokens stepped so that λ is a whole number of steps."""
        lam = cost.search_cost_tokens
        step = self.token_step
        if lam > 0:
            step = lam / max(1, round(lam / self.token_step))
        tokens = np.arange(0.0, self.max_tokens + step * 0.5, step)
        searches = np.arange(0.0, self.max_searches + 1.0)
        return tokens, searches


@dataclass(frozen=True, kw_only=True)
class QueryPlan:
    """What one query gets."""

    tokens: int
    searches: int
    cost: float
    expected_quality: float
    fallback: bool = False
    """True when the query's curve was unusable and it got the uniform share."""
    reason: str = ""

    @property
    def forced_answer(self) -> bool:
        """Nothing to spend: the loop answers at once from what it has."""
        return self.tokens <= 0 and self.searches <= 0


def check_budget(name: str, value: float) -> float:
    """A budget at the API edge: a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidBudgetError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise InvalidBudgetError(f"{name} must be finite and non-negative, got {value!r}")
    return value


@dataclass(frozen=True)
class Profiles:
    """Concave-hull increments of many curves: vertex arrays padded to a common length."""

    cost: FloatArray
    """(G, K) cost of each hull vertex; vertex 0 is the free point (T = 0, S = 0)."""
    value: FloatArray
    tokens: FloatArray
    searches: FloatArray
    vertices: IntArray
    """(G,) number of valid vertices per curve."""

    @property
    def slopes(self) -> FloatArray:
        """(G, K-1) gain per unit cost of each increment, −inf past the last vertex."""
        dc = np.diff(self.cost, axis=1)
        dv = np.diff(self.value, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dc > 0, dv / np.where(dc > 0, dc, 1.0), -np.inf)
        k = np.arange(slope.shape[1])[None, :]
        return np.where(k < (self.vertices[:, None] - 1), slope, -np.inf)


def _frontier(
    flat: FloatArray, c: FloatArray, t_flat: FloatArray, s_flat: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per distinct cost level, each row's best option (quality, T, S) at exactly that cost."""
    levels, inverse = np.unique(np.round(c, 6), return_inverse=True)
    inverse = inverse.reshape(-1)
    m = flat.shape[1]
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(levels)))
    ordered = flat[:, order]
    best_val = np.maximum.reduceat(ordered, starts, axis=1)
    # The first option reaching each level's best value: mark hits, then the first hit per level.
    counts = np.diff(np.append(starts, m))
    hit = ordered >= np.repeat(best_val, counts, axis=1)
    position = np.where(hit, m - np.arange(m)[None, :], 0)
    first = m - np.maximum.reduceat(position, starts, axis=1)
    best_idx = order[first]
    return levels, best_val, t_flat[best_idx], s_flat[best_idx]


def hull_profiles(
    values: FloatArray, costs: FloatArray, tokens: FloatArray, searches: FloatArray
) -> tuple[Profiles, FloatArray]:
    """Hull profiles of rows of option values: ``values`` (G, m); ``costs``, ``tokens``, ``searches`` (m,).

    The option of cost 0 (or the cheapest) is every row's starting vertex. Returns the profiles and the
    per-cost-level frontier values (G, levels).
    """
    levels, val, t_at, s_at = _frontier(values, costs, tokens, searches)
    g, n = val.shape
    # Pareto frontier: a level is a candidate only if it beats every cheaper level.
    running = np.maximum.accumulate(val, axis=1)
    prev_max = np.concatenate([np.full((g, 1), -np.inf), running[:, :-1]], axis=1)
    candidate = val > prev_max + 1e-12
    candidate[:, 0] = True
    masked = np.where(candidate, val, -np.inf)
    rows = np.arange(g)
    vert_idx = np.zeros((g, n), dtype=np.int64)
    count = np.ones(g, dtype=np.int64)
    cur = np.zeros(g, dtype=np.int64)
    active = rows.copy()
    later = np.arange(n)[None, :]
    while active.size:
        c0 = levels[cur[active]][:, None]
        v0 = val[active, cur[active]][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (masked[active] - v0) / (levels[None, :] - c0)
        slope = np.where(later > cur[active][:, None], slope, -np.inf)
        nxt = np.argmax(slope, axis=1)
        best = slope[np.arange(active.size), nxt]
        go = best > EPS
        active = active[go]
        nxt = nxt[go]
        vert_idx[active, count[active]] = nxt
        count[active] += 1
        cur[active] = nxt
    k = int(count.max())
    vi = vert_idx[:, :k]
    pad = np.arange(k)[None, :] >= count[:, None]
    vi = np.where(pad, vi[rows, count - 1][:, None], vi)
    profiles = Profiles(
        cost=levels[vi],
        value=val[rows[:, None], vi],
        tokens=t_at[rows[:, None], vi],
        searches=s_at[rows[:, None], vi],
        vertices=count,
    )
    return profiles, val


def cost_profiles(
    curves: Sequence[GainCurve], cost: CostModel, grid: AllocationGrid
) -> tuple[Profiles, FloatArray]:
    """Hull profiles of ``curves`` on the grid, and the raw frontier values per cost level."""
    tokens, searches = grid.axes(cost)
    values = curve_values(curves, tokens[:, None], searches[None, :])
    c = (tokens[:, None] + cost.search_cost_tokens * searches[None, :]).reshape(-1)
    shape = (len(tokens), len(searches))
    t_flat = np.broadcast_to(tokens[:, None], shape).reshape(-1)
    s_flat = np.broadcast_to(searches[None, :], shape).reshape(-1)
    return hull_profiles(values.reshape(len(curves), -1), c, t_flat, s_flat)


def uniform_split(
    budget: float, cost: CostModel, grid: AllocationGrid, *, search_share: float = 0.5
) -> QueryPlan:
    """The uniform fallback: ``search_share`` of the budget on searches (whole calls), the rest on tokens."""
    budget = check_budget("budget", budget)
    lam = cost.search_cost_tokens
    searches = 0 if lam <= 0 else min(grid.max_searches, int(search_share * budget // lam))
    tokens = int(max(0.0, budget - lam * searches))
    return QueryPlan(
        tokens=tokens,
        searches=searches,
        cost=float(tokens + lam * searches),
        expected_quality=float("nan"),
        fallback=True,
        reason="uniform fallback: no usable gain curve",
    )
