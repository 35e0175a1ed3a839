"""Allocation: turn gain curves and a budget into tokens and searches per query.

Each curve is first reduced to its *cost profile*: on the grid of (T, S) points the allocator may
choose, the best quality reachable at each cost ``T + λ·S`` (the best split between the axes), and the
upper concave hull of that frontier. The hull's segments are the increments the greedy allocator buys,
in order of marginal gain per unit of cost, which is optimal for concave curves and sound for the
others (a product curve gains nothing from a search alone, so the hull bundles the first search with
tokens rather than stalling at zero marginal gain).

* :func:`allocate` — one query, the best point within its budget down to a stopping price.
* :func:`allocate_batch` — all queries of a batch under one total budget: the greedy over every
  query's increments (a heap's pop order; :func:`allocate_batch_heap` is the literal heap and gives the
  same plan). Queries with identical curves are allocated as one group, so they get identical shares.
* :func:`allocate_batch_lagrangian` — the dual: bisection on the price μ; each query buys every
  increment whose gain per cost is at least μ.

Bad input at the edge (negative or NaN budgets) raises :class:`~leadline.errors.InvalidBudgetError`;
inside a batch, a query without a usable curve (``None``, a curve that raises or gives NaN) gets the
uniform share and is marked ``fallback`` (logged), so one bad query never crashes a batch.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve, curve_values
from leadline.errors import InvalidBudgetError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_EPS = 1e-12


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
        return float(sum(q.cost for q in self.queries))

    @property
    def unspent(self) -> float:
        return max(0.0, self.budget - self.spent)

    @property
    def expected_quality(self) -> float:
        """Mean expected quality over the batch."""
        if not self.queries:
            return 0.0
        return float(sum(q.expected_quality for q in self.queries) / len(self.queries))


def check_budget(name: str, value: float) -> float:
    """A budget at the API edge: a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidBudgetError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise InvalidBudgetError(f"{name} must be finite and non-negative, got {value!r}")
    return value


# -- cost profiles --------------------------------------------------------------------------------


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
        go = best > _EPS
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


# -- one query ------------------------------------------------------------------------------------


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


# -- a batch --------------------------------------------------------------------------------------


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
        valid = np.flatnonzero(flat_slope >= max(price, _EPS))
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
        floor = max(price, _EPS)
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

        lo = max(price, _EPS)
        k, spend = take(lo)
        if spend <= budget + 1e-9:
            return self._finish(k, lo if k.any() else 0.0, "lagrangian", share, total_budget)
        hi = float(np.max(slopes)) * 1.0001 + _EPS
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


def allocate_batch(
    curves: Sequence[GainCurve | None],
    total_budget: float,
    *,
    cost: CostModel | None = None,
    grid: AllocationGrid | None = None,
    price: float = 0.0,
) -> Plan:
    """Greedy by marginal gain per cost over every query's increments, under one total budget."""
    check_budget("total_budget", total_budget)
    return prepare_batch(curves, cost=cost, grid=grid).greedy(total_budget, price=price)


def allocate_batch_heap(
    curves: Sequence[GainCurve | None],
    total_budget: float,
    *,
    cost: CostModel | None = None,
    grid: AllocationGrid | None = None,
    price: float = 0.0,
) -> Plan:
    """:func:`allocate_batch` with a literal heap (same plan; slower; kept as the reference)."""
    check_budget("total_budget", total_budget)
    return prepare_batch(curves, cost=cost, grid=grid).heap(total_budget, price=price)


def allocate_batch_lagrangian(
    curves: Sequence[GainCurve | None],
    total_budget: float,
    *,
    cost: CostModel | None = None,
    grid: AllocationGrid | None = None,
    price: float = 0.0,
) -> Plan:
    """The Lagrangian dual of :func:`allocate_batch`: bisection on the price."""
    check_budget("total_budget", total_budget)
    return prepare_batch(curves, cost=cost, grid=grid).lagrangian(total_budget, price=price)


__all__ = [
    "AllocationGrid",
    "Plan",
    "PreparedBatch",
    "Profiles",
    "QueryPlan",
    "allocate",
    "allocate_batch",
    "allocate_batch_heap",
    "allocate_batch_lagrangian",
    "check_budget",
    "cost_profiles",
    "hull_profiles",
    "prepare_batch",
    "uniform_split",
]
