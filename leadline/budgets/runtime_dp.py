"""The runtime controller's exact rule: a finite-horizon dynamic programme over what the run has seen.

The belief of :mod:`leadline.budgets.runtime` depends on a run only through its counts (searches ``s``,
relevant hits ``hs``, chunks ``c``, converging chunks ``hc``), so the counts are the state of a Markov
decision problem. With the price ``μ`` per unit of cost, the value of a state is

    V = max( answer now:  E[A·G_k(c, s) | state],
             search:      P(hit | state)·V(s+1, hs+1, c, hc) + P(miss | state)·V(s+1, hs, c, hc) − μ·λ,
             think:       P(conv | state)·V(s, hs, c+1, hc+1) + P(not | state)·V(s, hs, c+1, hc) − μ·χ )

and backward induction over the lattice of counts gives the Bayes-optimal stop/continue/which-axis rule:
it values what later steps teach, which a fixed continuation (the block look-ahead) does not.

What makes it cheap: everything the belief contributes — ``E[A·1{k} | state]`` for the three kinds,
``P(hit | state)`` and ``P(conv | state)`` — depends on the state and on the belief the runs start from,
not on a run's curves or on the price (:func:`belief_tables`; a batch whose runs start from a few distinct
beliefs shares a few tables). A run enters only through its expected curves ``gs[s]``, ``gt[c]`` (the
scales σ and τ are independent of the signals), so one state of one run costs a few flops per price.

The lattice is relative to where the runs stand and bounded by a :class:`DPHorizon` (at most this many more
searches, chunks, steps); past it no further step is considered, and a run's own caps bound it too. In the
loop the programme is solved again at every decision, so the horizon limits how far it looks ahead, not how
far a run goes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from leadline.errors import ConfigError

if TYPE_CHECKING:
    from leadline.budgets.runtime import RuntimeModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

STOP, SEARCH, THINK = 0, 1, 2
_CACHE = 256


@dataclass(frozen=True)
class DPHorizon:
    """How far the programme looks from where a run stands: more searches, chunks, and steps in all."""

    searches: int = 20
    chunks: int = 40
    steps: int = 48
    offsets: IntArray = field(init=False, repr=False, compare=False)
    """(searches + 1, chunks + 1): where block (s, c) starts in a flat state vector; -1 outside."""
    size: int = field(init=False, repr=False, compare=False)
    """Number of states (s, hs, c, hc) on the lattice."""
    pairs: tuple[IntArray, IntArray] = field(init=False, repr=False, compare=False)
    """Per state, the index of its (s, hs) pair, s(s+1)/2 + hs, and of its (c, hc) pair."""

    def __post_init__(self) -> None:
        if min(self.searches, self.chunks, self.steps) < 0:
            raise ConfigError("a DP horizon cannot be negative")
        off = np.full((self.searches + 1, self.chunks + 1), -1, dtype=np.int64)
        n = 0
        for s in range(self.searches + 1):
            for c in range(min(self.chunks, self.steps - s) + 1):
                off[s, c] = n
                n += (s + 1) * (c + 1)
        object.__setattr__(self, "offsets", off)
        object.__setattr__(self, "size", n)
        pair_s, pair_c = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        for s, c in self.blocks():
            hs, hc = np.meshgrid(np.arange(s + 1), np.arange(c + 1), indexing="ij")
            sl = slice(int(off[s, c]), int(off[s, c]) + (s + 1) * (c + 1))
            pair_s[sl] = (s * (s + 1) // 2 + hs).reshape(-1)
            pair_c[sl] = (c * (c + 1) // 2 + hc).reshape(-1)
        object.__setattr__(self, "pairs", (pair_s, pair_c))

    def inside(self, s: int, c: int) -> bool:
        """Whether block (s, c) — s more searches, c more chunks — is on the lattice."""
        return s <= self.searches and c <= self.chunks and s + c <= self.steps

    def blocks(self) -> list[tuple[int, int]]:
        """The blocks (s, c) in backward-induction order (successors first)."""
        return [
            (s, c)
            for s in range(self.searches, -1, -1)
            for c in range(min(self.chunks, self.steps - s), -1, -1)
        ]

    def index(self, s: IntArray, hs: IntArray, c: IntArray, hc: IntArray) -> IntArray:
        """Flat state index of relative counts (all on the lattice)."""
        return np.asarray(self.offsets[s, c] + hs * (c + 1) + hc, dtype=np.int64)


def _scaled_likelihood(p: FloatArray, n: int) -> FloatArray:
    """(3, J, P): the likelihood h·log p + (m − h)·log(1 − p) of every pair h ≤ m ≤ n (pair index
    m(m+1)/2 + h), each pair rescaled so its largest value over (kind, amplitude) is 1."""
    m, h = np.tril_indices(n + 1)
    log = h * np.log(p)[:, :, None] + (m - h) * np.log1p(-p)[:, :, None]
    return np.asarray(np.exp(log - log.max(axis=(0, 1), keepdims=True)))


def belief_tables(
    weights: FloatArray,
    grid: FloatArray,
    p_search: FloatArray,
    p_think: FloatArray,
    horizon: DPHorizon,
) -> FloatArray:
    """(G, 5, horizon.size): for G starting beliefs, per state E[A·1{k}] (k = 0, 1, 2), P(hit), P(conv).

    weights (G, 3, J): each belief over (kind, amplitude) where the runs stand; grid (J,): the amplitudes;
    p_search, p_think (3, J): the signal probabilities. Exact Bayes: a state's weights are the starting
    weights times the likelihood of its further counts, which factors into a search part and a chunk
    part, so each sum over the amplitude grid is one matrix product per kind for all states at once (each
    part rescaled per count pair; the ratios are what matter). A state whose likelihood underflows
    everywhere — evidence no run can produce — gets zero amplitude and signal rates.
    """
    ls = _scaled_likelihood(p_search, horizon.searches)  # (3, J, Ps)
    lt = _scaled_likelihood(p_think, horizon.chunks)  # (3, J, Pc)
    rates = np.stack([np.broadcast_to(grid, p_search.shape), np.ones_like(p_search), p_search, p_think])
    ps_idx, pc_idx = horizon.pairs
    out = np.zeros((weights.shape[0], 5, horizon.size))
    for g, w in enumerate(weights):
        sums = np.zeros((6, ls.shape[2], lt.shape[2]))  # N_0, N_1, N_2, D, Hs, Hc
        for k in range(3):
            left = (ls[k][None, :, :] * (w[k][None, :] * rates[:, k])[:, :, None]).transpose(0, 2, 1)
            prod = left @ lt[k]  # (4, Ps, Pc): Σ_j w·L·(a, 1, p_search, p_think)
            sums[k] += prod[0]
            sums[3:] += prod[1:]
        flat = sums[:, ps_idx, pc_idx]  # (6, size)
        total = flat[3]
        ok = total > 0
        out[g][:, ok] = np.concatenate([flat[0:3, ok], flat[4:6, ok]]) / total[ok]
    return out


@dataclass(frozen=True)
class DPPlan:
    """The solved programme for a batch of runs: the action at every state, and the values at the root.

    Runs may be solved in parts with different horizons (:func:`plan_runs` gives each run the depth its
    curves can repay); ``part`` and ``row`` say where each run's actions are.
    """

    horizons: tuple[DPHorizon, ...]
    actions: tuple[Int8Array, ...]
    """Per part, (its runs, horizon.size): STOP, SEARCH or THINK at each state (relative counts)."""
    part: IntArray
    row: IntArray
    stop_value: FloatArray
    """Expected quality of answering now, per run."""
    search_value: FloatArray
    """Value of searching now and acting optimally after, net of priced cost (-inf: not allowed)."""
    think_value: FloatArray
    """The same for a reasoning chunk."""

    @property
    def value(self) -> FloatArray:
        """The optimal value per run (expected quality less priced expected cost)."""
        return np.asarray(np.maximum(self.stop_value, np.maximum(self.search_value, self.think_value)))

    @property
    def first(self) -> IntArray:
        """Each run's action where it stands now."""
        return np.asarray([self.actions[p][r, 0] for p, r in zip(self.part, self.row, strict=True)], np.int64)

    @property
    def limits(self) -> IntArray:
        """(n, 3): each run's horizon (further searches, chunks, steps)."""
        h = np.asarray([(x.searches, x.chunks, x.steps) for x in self.horizons], dtype=np.int64)
        return np.asarray(h[self.part], dtype=np.int64)

    def action(self, runs: IntArray, s: IntArray, hs: IntArray, c: IntArray, hc: IntArray) -> IntArray:
        """The action of each run at its relative counts (a plan never steps past its horizon)."""
        out = np.zeros(len(runs), dtype=np.int64)
        parts = self.part[runs]
        for p, (h, acts) in enumerate(zip(self.horizons, self.actions, strict=True)):
            m = parts == p
            if m.any():
                out[m] = acts[self.row[runs[m]], h.index(s[m], hs[m], c[m], hc[m])]
        return out


def solve(
    tables: Sequence[FloatArray] | FloatArray,
    group: IntArray,
    gs: FloatArray,
    gt: FloatArray,
    price: FloatArray,
    *,
    search_cost: float,
    think_cost: float,
    search_room: IntArray,
    think_room: IntArray,
    horizon: DPHorizon,
    chunk: int = 64,
    dtype: type[np.floating[Any]] = np.float64,
) -> DPPlan:
    """Backward induction for n runs at one price each.

    tables: :func:`belief_tables` for the G starting beliefs (or a sequence of their (5, size) rows);
    group (n,): each run's belief; gs (n, ≥ S+1) and gt (n, ≥ C+1): each run's expected curves from where
    it stands (index = further steps); price (n,); search_room, think_room (n,): how many more steps
    each run's caps allow. ``chunk`` runs are solved together (small chunks stay in cache); ``dtype``
    float32 halves the memory traffic of a large batch at no measurable cost in decisions.
    """
    n = len(group)
    acts = np.zeros((n, horizon.size), dtype=np.int8)
    stop0, search0, think0 = np.empty(n), np.empty(n), np.empty(n)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for members in np.split(order, bounds):
        for start in range(0, len(members), chunk):
            idx = members[start : start + chunk]
            r = _solve_group(
                np.asarray(tables[group[idx[0]]], dtype),
                np.asarray(gs[idx], dtype),
                np.asarray(gt[idx], dtype),
                np.asarray(price, dtype)[idx],
                search_cost,
                think_cost,
                search_room[idx],
                think_room[idx],
                horizon,
            )
            acts[idx], stop0[idx], search0[idx], think0[idx] = r
    return DPPlan((horizon,), (acts,), np.zeros(n, np.int64), np.arange(n), stop0, search0, think0)


def _solve_group(
    tab: FloatArray,
    gs: FloatArray,
    gt: FloatArray,
    price: FloatArray,
    search_cost: float,
    think_cost: float,
    search_room: IntArray,
    think_room: IntArray,
    horizon: DPHorizon,
) -> tuple[Int8Array, FloatArray, FloatArray, FloatArray]:
    """Backward induction for runs that start from one belief (one table)."""
    q = len(price)
    acts = np.zeros((q, horizon.size), dtype=np.int8)
    ms = (price * search_cost)[:, None, None]
    mt = (price * think_cost)[:, None, None]
    last_s, last_t = gs.shape[1] - 1, gt.shape[1] - 1
    prev: dict[int, FloatArray] = {}  # the row s + 1, by c
    root: tuple[FloatArray, FloatArray, FloatArray] | None = None
    think_root = np.full(q, -np.inf)
    for s in range(horizon.searches, -1, -1):
        row: dict[int, FloatArray] = {}
        g_s = gs[:, min(s, last_s)]
        s_blocked = search_room <= s
        for c in range(min(horizon.chunks, horizon.steps - s), -1, -1):
            off, size = int(horizon.offsets[s, c]), (s + 1) * (c + 1)
            t = tab[:, off : off + size]
            g_t = gt[:, min(c, last_t)]
            # answer now: Σ_k E[A·1{k}]·G_k, one small matrix product for the whole block
            stop = (np.stack([g_s, g_t, g_s * g_t], axis=1) @ t[0:3]).reshape(q, s + 1, c + 1)
            best = stop
            act = np.zeros((q, s + 1, c + 1), dtype=np.int8)
            sv = tv = None
            if horizon.inside(s + 1, c):
                nxt = prev[c]
                miss = nxt[:, :-1, :]
                sv = nxt[:, 1:, :] - miss
                sv *= t[3].reshape(s + 1, c + 1)
                sv += miss
                sv -= ms
                if s_blocked.any():
                    sv[s_blocked] = -np.inf
                np.greater(sv, stop, out=act, casting="unsafe")  # SEARCH == 1
                best = np.maximum(stop, sv)
            if horizon.inside(s, c + 1):
                nxt = row[c + 1]
                miss = nxt[:, :, :-1]
                tv = nxt[:, :, 1:] - miss
                tv *= t[4].reshape(s + 1, c + 1)
                tv += miss
                tv -= mt
                blocked = think_room <= c
                if blocked.any():
                    tv[blocked] = -np.inf
                # a tie with searching goes to thinking: a chunk's probe can settle the answer
                take = (tv > best) | ((tv == best) & (act == SEARCH))
                act[take] = THINK
                if s == 0 and c == 0:
                    think_root = tv[:, 0, 0].copy()
                np.maximum(best, tv, out=tv)
                best = tv
            row[c] = best
            acts[:, off : off + size] = act.reshape(q, size)
            if s == 0 and c == 0:
                none = np.full(q, -np.inf)
                root = (
                    stop[:, 0, 0],
                    none if sv is None else sv[:, 0, 0],
                    none if tv is None else think_root,
                )
        prev = row
    assert root is not None
    return acts, root[0], root[1], root[2]


@functools.lru_cache(maxsize=256)
def _horizon(searches: int, chunks: int, steps: int) -> DPHorizon:
    return DPHorizon(searches, chunks, steps)


def repaid_depth(curve: FloatArray, unit_price: FloatArray, limit: int, margin: int = 4) -> IntArray:
    """Per run, how many more steps on one axis a sure answer could repay, plus ``margin``, rounded up to
    a multiple of 4 and at most ``limit``: past the point where even A = 1 gains less from a step than
    the step costs, only the information a step brings could pay for it, and there little is left to
    learn. curve (n, L): the run's expected curve from where it stands; unit_price (n,): μ·cost."""
    paying = (np.diff(curve, axis=1) >= unit_price[:, None]).sum(axis=1)
    depth = 4 * np.ceil((paying + margin) / 4.0)
    return np.asarray(np.minimum(depth, limit), dtype=np.int64)


def plan_runs(
    model: RuntimeModel,
    horizon: DPHorizon,
    cache: dict[tuple[bytes, DPHorizon], FloatArray],
    *,
    kind_prior: FloatArray,
    gs: FloatArray,
    gt: FloatArray,
    counts: tuple[IntArray, IntArray, IntArray, IntArray],
    price: float | FloatArray,
    costs: tuple[float, float],
    prune: bool = True,
    chunk: int = 64,
    dtype: type[np.floating[Any]] = np.float64,
) -> DPPlan:
    """Solve the programme for n runs from where each stands (what :meth:`RuntimePolicy.plan` runs).

    kind_prior (n, 3); gs (n, S+1), gt (n, C+1): each run's expected curves at 0..S searches and 0..C
    chunks (their lengths are the caps); counts: (searches, hits, chunks, converging chunks) per run;
    costs: (search, chunk). ``horizon`` bounds the look-ahead; with ``prune`` each run looks only as deep
    as :func:`repaid_depth` says its curves can repay (runs are solved in parts by depth). Runs starting
    from the same belief share one table per depth, kept in ``cache`` for calls at other prices.
    """
    s0, hs0, c0, hc0 = (np.asarray(x, np.int64).reshape(-1) for x in counts)
    n = len(s0)
    mu = np.broadcast_to(np.asarray(price, dtype=np.float64), (n,)).astype(np.float64)
    cap_s, cap_c = gs.shape[1] - 1, gt.shape[1] - 1
    rows = np.arange(n)[:, None]
    gs_rel = gs[rows, np.minimum(s0[:, None] + np.arange(horizon.searches + 1)[None, :], cap_s)]
    gt_rel = gt[rows, np.minimum(c0[:, None] + np.arange(horizon.chunks + 1)[None, :], cap_c)]
    if prune:
        d_s = repaid_depth(gs_rel, mu * costs[0], horizon.searches)
        d_c = repaid_depth(gt_rel, mu * costs[1], horizon.chunks)
        depth = np.column_stack([d_s, d_c, np.minimum(d_s + d_c, horizon.steps)])
    else:
        depth = np.tile([horizon.searches, horizon.chunks, horizon.steps], (n, 1))
    classes, cls = np.unique(depth, axis=0, return_inverse=True)
    cls = np.asarray(cls).reshape(-1)
    state = np.column_stack([kind_prior, s0, hs0, c0, hc0]).astype(np.float64)
    beliefs, first, group = np.unique(state, axis=0, return_index=True, return_inverse=True)
    group = np.asarray(group, np.int64).reshape(-1)
    part, row = np.zeros(n, np.int64), np.zeros(n, np.int64)
    values = np.zeros((3, n))
    horizons, actions = [], []
    for p, (ds, dc, dn) in enumerate(classes):
        h = _horizon(int(ds), int(dc), int(dn))
        members = np.flatnonzero(cls == p)
        used = np.unique(group[members])
        keys = [(beliefs[g].tobytes(), h) for g in used]
        missing = [i for i, k in enumerate(keys) if k not in cache]
        if missing:
            f = first[used[missing]]
            w = model.posterior(kind_prior[f], s0[f], hs0[f], c0[f], hc0[f])
            a = model.grid
            fresh = belief_tables(w, a, model.search_signal.prob(a), model.think_signal.prob(a), h)
            if len(cache) + len(missing) > _CACHE:
                cache.clear()
            for i, t in zip(missing, fresh, strict=True):
                cache[keys[i]] = t
        sub = solve(
            [cache[k] for k in keys],
            np.searchsorted(used, group[members]),
            gs_rel[members, : h.searches + 1],
            gt_rel[members, : h.chunks + 1],
            mu[members],
            search_cost=costs[0],
            think_cost=costs[1],
            search_room=cap_s - s0[members],
            think_room=cap_c - c0[members],
            horizon=h,
            chunk=chunk,
            dtype=dtype,
        )
        horizons.append(h)
        actions.append(sub.actions[0])
        part[members], row[members] = p, np.arange(len(members))
        values[:, members] = sub.stop_value, sub.search_value, sub.think_value
    return DPPlan(tuple(horizons), tuple(actions), part, row, values[0], values[1], values[2])


__all__ = ["DPHorizon", "DPPlan", "belief_tables", "plan_runs", "repaid_depth", "solve"]
