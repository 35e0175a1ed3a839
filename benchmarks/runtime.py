"""Runtime benchmark R1 (issue 11, point 2): what a controller gains from what a run reveals while it goes.

R1, implemented exactly as the issue writes it: 5,000 i.i.d. queries per population, evaluation seeds
404/405/406, training seed 1404, budgets B = 2,000 / 4,000 / 8,000 (mean cost per query, λ = 500).
A query: kind k uniform on {0 search-only, 1 tokens-only, 2 both}; log σ ~ N(log 3, 0.8²), log τ ~
N(log 1500, 0.8²), A ~ Beta(0.35, 0.6); quality A·g_k(T, S). Seen before the run: the kind (right with
probability 0.85), log σ and log τ plus N(0, 0.5²). Actions one at a time: a search (cost 500, S ≤ 32), a
500-token chunk (T ≤ 32,000), or stop. Signals: after a search Bernoulli(0.9A) (k = 0, 2) or
Bernoulli(0.3A) (k = 1); after a chunk Bernoulli(0.2 + 0.6A) (k = 1, 2) or Bernoulli(0.2 + 0.2A) (k = 0);
the j-th signal of query i uses a uniform drawn from the population's seed, the same for every policy.

The policy measured is the product's runtime controller (:class:`leadline.budgets.runtime.RuntimePolicy`,
the rule :class:`leadline.budgets.runtime_controller.RuntimeController` runs in the loop) driven by R1's
signals through :class:`R1Adapter`. Its numbers (amplitude prior, signal likelihoods, kind confusion, the
noise of the seen σ and τ) are fitted on the training population (seed 1404), whose latents are revealed
as a trace would reveal outcomes. One price per batch, found by bisection so the batch's mean cost meets B
(a shared pool). The myopic policy (no value of information) runs through the same code beside it.

References: uniform (the best fixed (T, S) with T + 500·S = B, with hindsight on the true curves), the
static dual bound (allocation before the run from the observables), the runtime ceiling (the dual bound
with A and k revealed before the run) and the oracle (the batch greedy on the true curves).
Reported per cell, the mean over the three seeds: the share of the uniform→oracle gap closed, and the
efficiency B / (mean compute the policy needs to match uniform's quality at B). The last line is
key=value figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from leadline.budgets.allocation import AllocationGrid, prepare_batch
from leadline.budgets.bounds import dual_upper_bound
from leadline.budgets.cost import CostModel
from leadline.budgets.curves import ComplementsCurve, GainCurve, SubstitutesCurve
from leadline.budgets.runtime import (
    SEARCH,
    STOP,
    THINK,
    RuntimeModel,
    RuntimePolicy,
    SignalModel,
    lognormal_curve,
    normal_posterior,
)
from leadline.budgets.runtime_dp import DPHorizon, DPPlan

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LAMBDA = 500.0
CHUNK = 500.0
MAX_S = 32
MAX_C = 64
N_QUERIES = 5000
BUDGETS = (2000.0, 4000.0, 8000.0)
EVAL_SEEDS = (404, 405, 406)
TRAIN_SEED = 1404
COST = CostModel(search_cost_tokens=LAMBDA)
GRID = AllocationGrid(token_step=CHUNK, max_tokens=CHUNK * MAX_C, max_searches=MAX_S)
INF = float("inf")
HORIZON = DPHorizon(32, 40, 56)
"""The dynamic programme's horizon here: every search the caps allow, 40 chunks, 56 steps in all."""


@dataclass(frozen=True)
class R1Population:
    """One seeded R1 population: latents, observables and the signal uniforms."""

    kind: IntArray
    log_sigma: FloatArray
    log_tau: FloatArray
    amp: FloatArray
    seen_kind: IntArray
    seen_log_sigma: FloatArray
    seen_log_tau: FloatArray
    u_search: FloatArray
    """(n, 32): the uniform behind the j-th search signal of each query."""
    u_chunk: FloatArray
    """(n, 64): the same for chunks."""

    @property
    def n(self) -> int:
        return len(self.kind)


def make_r1(seed: int, n: int = N_QUERIES) -> R1Population:
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    log_sigma = rng.normal(math.log(3.0), 0.8, n)
    log_tau = rng.normal(math.log(1500.0), 0.8, n)
    amp = rng.beta(0.35, 0.6, n)
    right = rng.random(n) < 0.85
    seen_kind = np.where(right, kind, (kind + rng.integers(1, 3, n)) % 3)
    seen_log_sigma = log_sigma + rng.normal(0.0, 0.5, n)
    seen_log_tau = log_tau + rng.normal(0.0, 0.5, n)
    u_search = rng.random((n, MAX_S))
    u_chunk = rng.random((n, MAX_C))
    return R1Population(
        kind, log_sigma, log_tau, amp, seen_kind, seen_log_sigma, seen_log_tau, u_search, u_chunk
    )


def signal_probs(pop: R1Population) -> tuple[FloatArray, FloatArray]:
    """True per-query signal probabilities (search, chunk) — R1's generator, used to draw signals only."""
    p_search = np.where(pop.kind == 1, 0.3 * pop.amp, 0.9 * pop.amp)
    p_chunk = np.where(pop.kind == 0, 0.2 + 0.2 * pop.amp, 0.2 + 0.6 * pop.amp)
    return p_search, p_chunk


def true_quality(pop: R1Population, tokens: FloatArray, searches: FloatArray) -> FloatArray:
    g0 = -np.expm1(-searches / np.exp(pop.log_sigma))
    g1 = -np.expm1(-tokens / np.exp(pop.log_tau))
    g = np.where(pop.kind == 0, g0, np.where(pop.kind == 1, g1, g0 * g1))
    return np.asarray(pop.amp * g)


def true_curves(pop: R1Population) -> list[GainCurve]:
    out: list[GainCurve] = []
    for k, ls, lt, a in zip(pop.kind, pop.log_sigma, pop.log_tau, pop.amp, strict=True):
        sigma, tau = math.exp(ls), math.exp(lt)
        if k == 0:
            out.append(SubstitutesCurve(q0=0.0, a=float(a), tau=INF, sigma=sigma))
        elif k == 1:
            out.append(SubstitutesCurve(q0=0.0, a=float(a), tau=tau, sigma=INF))
        else:
            out.append(ComplementsCurve(q0=0.0, a=float(a), tau=tau, sigma=sigma))
    return out


# -- the thin adapter: R1's observables and signals -> the product's runtime controller ---------------


@dataclass(frozen=True)
class R1Adapter:
    """Maps R1's observables onto the runtime controller's inputs; its numbers are fitted on training."""

    model: RuntimeModel
    kind_right: float
    sigma_prior: tuple[float, float]
    tau_prior: tuple[float, float]
    noise_sd: tuple[float, float]

    @classmethod
    def fit(cls, train: R1Population, *, points: int = 48) -> R1Adapter:
        """Fit on a training population with its latents revealed (method of moments, least squares)."""
        a = train.amp
        mean, var = float(a.mean()), float(a.var())
        common = mean * (1.0 - mean) / var - 1.0
        alpha, beta = mean * common, (1.0 - mean) * common
        p_search, p_chunk = signal_probs(train)
        hits_s = (train.u_search < p_search[:, None]).mean(axis=1)  # each query's share of hits
        hits_c = (train.u_chunk < p_chunk[:, None]).mean(axis=1)
        base_s, slope_s, base_c, slope_c = [], [], [], []
        for k in range(3):
            sel = train.kind == k
            x = np.column_stack([np.ones(int(sel.sum())), a[sel]])
            bs, ss = np.linalg.lstsq(x, hits_s[sel], rcond=None)[0]
            bc, sc = np.linalg.lstsq(x, hits_c[sel], rcond=None)[0]
            base_s.append(float(bs))
            slope_s.append(float(ss))
            base_c.append(float(bc))
            slope_c.append(float(sc))
        model = RuntimeModel.beta_prior(
            alpha,
            beta,
            search_signal=SignalModel(base=tuple(base_s), slope=tuple(slope_s)),  # type: ignore[arg-type]
            think_signal=SignalModel(base=tuple(base_c), slope=tuple(slope_c)),  # type: ignore[arg-type]
            points=points,
            source=f"R1 training population (seed {TRAIN_SEED}, {train.n} queries)",
        )
        return cls(
            model=model,
            kind_right=float((train.seen_kind == train.kind).mean()),
            sigma_prior=(float(train.log_sigma.mean()), float(train.log_sigma.std())),
            tau_prior=(float(train.log_tau.mean()), float(train.log_tau.std())),
            noise_sd=(
                float((train.seen_log_sigma - train.log_sigma).std()),
                float((train.seen_log_tau - train.log_tau).std()),
            ),
        )

    def inputs(self, pop: R1Population) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(kind prior (n, 3), expected search curve (n, 33), expected chunk curve (n, 65))."""
        kp = np.full((pop.n, 3), (1.0 - self.kind_right) / 2.0)
        kp[np.arange(pop.n), pop.seen_kind] = self.kind_right
        ms, sds = normal_posterior(*self.sigma_prior, self.noise_sd[0], pop.seen_log_sigma)
        mt, sdt = normal_posterior(*self.tau_prior, self.noise_sd[1], pop.seen_log_tau)
        gs = lognormal_curve(ms, sds, MAX_S)
        gt = lognormal_curve(mt - math.log(CHUNK), sdt, MAX_C)  # τ in chunks of 500 tokens
        return kp, gs, gt


def simulate(
    pop: R1Population,
    policy: RuntimePolicy,
    inputs: tuple[FloatArray, FloatArray, FloatArray],
    price: float,
    *,
    lookahead: bool = True,
) -> tuple[float, float]:
    """Run every query of the batch under the runtime controller at one price: (mean quality, mean cost)."""
    kp, gs, gt = inputs
    n = pop.n
    p_search, p_chunk = signal_probs(pop)
    s = np.zeros(n, np.int64)
    c = np.zeros(n, np.int64)
    hs = np.zeros(n, np.int64)
    hc = np.zeros(n, np.int64)
    active = np.arange(n)
    while len(active):
        d = policy.decide(
            kind_prior=kp[active],
            gs=gs[active],
            gt=gt[active],
            searches=s[active],
            search_hits=hs[active],
            thinks=c[active],
            think_hits=hc[active],
            price=price,
            lookahead=lookahead,
        )
        i_s = active[d.action == SEARCH]
        i_c = active[d.action == THINK]
        hs[i_s] += pop.u_search[i_s, s[i_s]] < p_search[i_s]
        s[i_s] += 1
        hc[i_c] += pop.u_chunk[i_c, c[i_c]] < p_chunk[i_c]
        c[i_c] += 1
        active = np.concatenate([i_s, i_c])
        active.sort()
    tokens, searches = (c * CHUNK).astype(np.float64), s.astype(np.float64)
    return float(true_quality(pop, tokens, searches).mean()), float((tokens + LAMBDA * searches).mean())


def follow_plan(
    pop: R1Population,
    plan: DPPlan,
    rows: IntArray,
    counts: tuple[IntArray, IntArray, IntArray, IntArray],
    probs: tuple[FloatArray, FloatArray],
) -> None:
    """Run the queries ``rows`` (the plan's runs, in order) on their signals until each stops, updating
    ``counts`` (searches, hits, chunks, converging chunks; indexed by query) in place."""
    s, hs, c, hc = counts
    p_search, p_chunk = probs
    local = np.arange(len(rows))
    while len(local):
        q = rows[local]
        a = plan.action(local, s[q], hs[q], c[q], hc[q])
        i_s, i_c = q[a == SEARCH], q[a == THINK]
        hs[i_s] += pop.u_search[i_s, s[i_s]] < p_search[i_s]
        s[i_s] += 1
        hc[i_c] += pop.u_chunk[i_c, c[i_c]] < p_chunk[i_c]
        c[i_c] += 1
        local = local[a != STOP]


def seen_posteriors(pop: R1Population) -> tuple[FloatArray, float, FloatArray, float]:
    """Posterior mean and sd of log σ and of log τ given what is seen, under R1's generating priors."""
    ms, sds = normal_posterior(math.log(3.0), 0.8, 0.5, pop.seen_log_sigma)
    mt, sdt = normal_posterior(math.log(1500.0), 0.8, 0.5, pop.seen_log_tau)
    return ms, sds, mt, sdt


def simulate_dp(
    pop: R1Population,
    policy: RuntimePolicy,
    inputs: tuple[FloatArray, FloatArray, FloatArray],
    price: float,
    *,
    chunk: int = 1000,
    stats: dict[str, float] | None = None,
) -> tuple[float, float]:
    """The same batch under the dynamic programme (``policy.rule == "dp"``): each query's plan is solved
    once where it starts (the belief tables are shared and cached; float32 arithmetic) and followed; a
    plan answers every state it can reach, since the programme never steps past its horizon. ``stats``
    gets the share of runs that ended on their horizon (short of the caps), where a longer horizon could
    have gone on."""
    kp, gs, gt = inputs
    n = pop.n
    p_search, p_chunk = signal_probs(pop)
    s = np.zeros(n, np.int64)
    c = np.zeros(n, np.int64)
    hs = np.zeros(n, np.int64)
    hc = np.zeros(n, np.int64)
    lims = np.zeros((n, 3), np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        zero = np.zeros(len(rows), np.int64)
        plan = policy.plan(kp[rows], gs[rows], gt[rows], zero, zero, zero, zero, price, dtype=np.float32)
        lims[rows] = plan.limits
        follow_plan(pop, plan, rows, (s, hs, c, hc), (p_search, p_chunk))
    if stats is not None:
        edge = ((s == lims[:, 0]) & (s < MAX_S)) | ((c == lims[:, 1]) & (c < MAX_C)) | (s + c == lims[:, 2])
        stats["on_horizon"] = float(edge.mean())
    tokens, searches = (c * CHUNK).astype(np.float64), s.astype(np.float64)
    quality = float(true_quality(pop, tokens, searches).mean())
    cost = float((tokens + LAMBDA * searches).mean())
    print(f"  dp at price {price:.4e}: quality {quality:.4f}, cost {cost:.0f}", flush=True)
    return quality, cost


class PriceCurve:
    """A policy's (quality, cost) at each price tried on one population, cached; searches on price.

    Quality and cost both fall as the price rises. A search brackets the target among the prices
    already tried (else walks from the tried price whose value is nearest the target, or from
    ``start``, by factors of 3), then narrows it by regula falsi in log price (Illinois variant) until the
    value is within ``tol``.
    """

    def __init__(self, run: Callable[[float], tuple[float, float]], start: float = 1e-4) -> None:
        self.run = run
        self.start = start
        self.points: dict[float, tuple[float, float]] = {}

    def at(self, price: float) -> tuple[float, float]:
        if price not in self.points:
            self.points[price] = self.run(price)
        return self.points[price]

    def _search(self, key: int, target: float, tol: float, steps: int) -> None:
        """Try prices until one gives ``points[p][key]`` within ``tol`` of ``target`` (or steps run out)."""

        def bracket() -> tuple[float, float] | None:
            above = [p for p, v in self.points.items() if v[key] >= target]  # low prices
            below = [p for p, v in self.points.items() if v[key] < target]  # high prices
            if above and below and max(above) < min(below):
                return max(above), min(below)
            return None

        price = self.start
        if self.points:
            price = min(self.points, key=lambda p: abs(math.log(max(self.points[p][key], 1e-12) / target)))
        for _ in range(16):
            if bracket() is not None or not 1e-9 < price < 1.0:
                break
            price = price * 3.0 if self.at(price)[key] >= target else price / 3.0
        b = bracket()
        if b is None:
            return
        lo, hi = math.log(b[0]), math.log(b[1])
        f_lo, f_hi = self.at(b[0])[key] - target, self.at(b[1])[key] - target
        side = 0
        for _ in range(steps):
            if min(abs(f_lo), abs(f_hi)) <= tol:
                return
            x = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
            if not lo < x < hi:
                x = 0.5 * (lo + hi)
            f = self.at(math.exp(x))[key] - target
            if f >= 0:
                lo, f_lo = x, f
                if side == -1:
                    f_hi /= 2.0
                side = -1
            else:
                hi, f_hi = x, f
                if side == 1:
                    f_lo /= 2.0
                side = 1

    def meets_budget(self, budget: float, steps: int = 10) -> tuple[float, float, float]:
        """(price, quality, cost) of the lowest price tried whose batch mean cost is within ``budget``."""
        self._search(1, budget, 0.002 * budget, steps)
        ok = [p for p, (_, c) in self.points.items() if c <= budget]
        price = min(ok) if ok else max(self.points)
        q, c = self.points[price]
        return price, q, c

    def compute_to_match(self, target: float, steps: int = 10) -> float:
        """The least mean cost among the prices tried whose quality reaches ``target`` (inf if none)."""
        self._search(0, target, 0.001 * target, steps)
        return min((c for q, c in self.points.values() if q >= target), default=INF)


# -- references --------------------------------------------------------------------------------------


def uniform_best(pop: R1Population, budget: float) -> tuple[float, tuple[float, int]]:
    best = (-1.0, (0.0, 0))
    for s in range(0, min(MAX_S, int(budget // LAMBDA)) + 1):
        t = min(budget - LAMBDA * s, CHUNK * MAX_C)
        q = float(true_quality(pop, np.full(pop.n, t), np.full(pop.n, float(s))).mean())
        if q > best[0]:
            best = (q, (t, s))
    return best


def _grid_values(m: FloatArray, gs: FloatArray, gt: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(n, (C+1)·(S+1)) expected values Σ_k m_k G_k on the full grid, and each point's cost."""
    v = (
        m[:, 0, None, None] * gs[:, None, :]
        + m[:, 1, None, None] * gt[:, :, None]
        + m[:, 2, None, None] * gt[:, :, None] * gs[:, None, :]
    )
    cost = (CHUNK * np.arange(MAX_C + 1)[:, None] + LAMBDA * np.arange(MAX_S + 1)[None, :]).reshape(-1)
    return v.reshape(len(m), -1), cost


def references(
    pop: R1Population, adapter: R1Adapter
) -> tuple[Callable[[float], float], Callable[[float], float], Callable[[float], float]]:
    """(oracle, static dual bound, runtime ceiling), each a function of the mean budget.

    The bounds use the generating priors (references, not policies): static = E[A]·Σ_k P(k | seen)·E[g_k |
    seen σ, τ]; runtime ceiling = A·E[g_k | seen σ, τ] with A and k revealed before the run.
    """
    oracle_batch = prepare_batch(true_curves(pop), cost=COST, grid=GRID)

    def oracle(budget: float) -> float:
        plan = oracle_batch.greedy(budget * pop.n)
        t = np.array([q.tokens for q in plan.queries], dtype=np.float64)
        s = np.array([q.searches for q in plan.queries], dtype=np.float64)
        return float(true_quality(pop, t, s).mean())

    ms, sds, mt, sdt = seen_posteriors(pop)
    gs, gt = lognormal_curve(ms, sds, MAX_S), lognormal_curve(mt - math.log(CHUNK), sdt, MAX_C)
    kp = np.full((pop.n, 3), 0.075)
    kp[np.arange(pop.n), pop.seen_kind] = 0.85
    static_v, cost = _grid_values(kp * (0.35 / 0.95), gs, gt)
    revealed = np.zeros((pop.n, 3))
    revealed[np.arange(pop.n), pop.kind] = pop.amp
    ceiling_v, _ = _grid_values(revealed, gs, gt)
    del adapter
    return (
        oracle,
        lambda b: dual_upper_bound(static_v, cost, b),
        lambda b: dual_upper_bound(ceiling_v, cost, b),
    )


# -- the run -----------------------------------------------------------------------------------------


def run(
    seeds: Sequence[int],
    n: int,
    out: dict[str, Any],
    *,
    rules: Sequence[str] = ("dp", "myopic"),
    horizon: DPHorizon = HORIZON,
    budgets: Sequence[float] = BUDGETS,
) -> list[dict[str, Any]]:
    """Every cell of R1 for each rule; "runtime" is the product's rule (the dynamic programme)."""
    started = time.perf_counter()
    adapter = R1Adapter.fit(make_r1(TRAIN_SEED, n))
    print(
        f"fitted on the training seed {TRAIN_SEED}: P(reported kind right) {adapter.kind_right:.3f}; "
        f"search signal {adapter.model.search_signal}; chunk signal {adapter.model.think_signal}; "
        f"DP horizon {horizon.searches} searches, {horizon.chunks} chunks, {horizon.steps} steps "
        f"({horizon.size} states)",
        flush=True,
    )
    names = {"dp": "runtime", "myopic": "myopic", "lookahead": "lookahead"}
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        pop = make_r1(seed, n)
        inputs = adapter.inputs(pop)
        oracle, static_dual, ceiling = references(pop, adapter)
        curves: dict[str, PriceCurve] = {}
        edge: dict[float, dict[str, float]] = {}
        for rule in rules:
            policy = RuntimePolicy(
                adapter.model, search_cost=LAMBDA, think_cost=CHUNK, rule=rule, horizon=horizon
            )

            def go(
                mu: float,
                pop: R1Population = pop,
                inputs: Any = inputs,
                pol: RuntimePolicy = policy,
                edge: Any = edge,
            ) -> tuple[float, float]:
                if pol.rule == "dp":
                    return simulate_dp(pop, pol, inputs, mu, stats=edge.setdefault(mu, {}))
                return simulate(pop, pol, inputs, mu, lookahead=pol.rule != "myopic")

            curves[names[rule]] = PriceCurve(go)
        for budget in budgets:
            q_uni, split = uniform_best(pop, budget)
            q_or = oracle(budget)
            gap = q_or - q_uni
            row: dict[str, Any] = {
                "seed": seed,
                "budget": budget,
                "uniform": q_uni,
                "uniform_split": f"T={split[0]:.0f},S={split[1]}",
                "oracle": q_or,
                "static_dual": (static_dual(budget) - q_uni) / gap,
                "ceiling": (ceiling(budget) - q_uni) / gap,
            }
            line = ""
            for name, curve in curves.items():
                price, q, cost = curve.meets_budget(budget)
                compute = curve.compute_to_match(q_uni)
                row[name] = q
                row[f"{name}_cost"] = cost
                row[f"{name}_price"] = price
                row[f"{name}_gap_closed"] = (q - q_uni) / gap
                row[f"{name}_efficiency"] = budget / compute if compute > 0 else INF
                row[f"{name}_prices_tried"] = len(curve.points)
                line += (
                    f"  {name} {q:.4f} (cost {cost:.0f}, price {price:.3e}) gap closed "
                    f"{row[f'{name}_gap_closed']:.3f} ({row[f'{name}_efficiency']:.2f}x)"
                )
                if name == "runtime" and price in edge:
                    row["runtime_on_horizon"] = edge[price].get("on_horizon", float("nan"))
                    line += f" [on the DP horizon: {row['runtime_on_horizon']:.2%}]"
            rows.append(row)
            print(
                f"seed {seed} B={budget:>5.0f}  uniform {q_uni:.4f} ({row['uniform_split']})  "
                f"oracle {q_or:.4f}{line}"
                f"  static dual {row['static_dual']:.3f}  runtime ceiling {row['ceiling']:.3f}"
                f"  [{time.perf_counter() - started:.0f}s]",
                flush=True,
            )
    summarise(rows, out, budgets=budgets)
    out["seconds"] = time.perf_counter() - started
    return rows


def summarise(rows: list[dict[str, Any]], out: dict[str, Any], *, budgets: Sequence[float] = BUDGETS) -> None:
    """The per-budget table (means over the seeds) and the summary figures."""
    policies = [p for p in ("runtime", "myopic", "lookahead") if all(f"{p}_gap_closed" in r for r in rows)]
    print("\nmean of the seeds per budget (gap closed, efficiency):")
    print("| B | uniform | oracle | " + " | ".join(policies) + " | static dual | runtime ceiling |")
    print("|---" * (5 + len(policies)) + "|")
    cells = []
    for budget in budgets:
        r = [x for x in rows if x["budget"] == budget]
        if not r:
            continue

        def mean(key: str, r: list[dict[str, Any]] = r) -> float:
            return float(np.mean([x[key] for x in r])) if all(key in x for x in r) else float("nan")

        cell = {k: mean(k) for k in r[0] if k not in ("seed", "budget", "uniform_split")}
        cell["budget"] = budget
        cells.append(cell)
        cols = " | ".join(f"{cell[f'{p}_gap_closed']:.3f} ({cell[f'{p}_efficiency']:.2f}x)" for p in policies)
        print(
            f"| {budget:.0f} | {cell['uniform']:.4f} | {cell['oracle']:.4f} | {cols} | "
            f"{cell['static_dual']:.3f} | {cell['ceiling']:.3f} |"
        )
    for p in policies:
        out[f"{p}_gap_closed_min"] = min(c[f"{p}_gap_closed"] for c in cells)
        out[f"{p}_gap_closed_mean"] = float(np.mean([c[f"{p}_gap_closed"] for c in cells]))
        out[f"{p}_efficiency_min"] = min(c[f"{p}_efficiency"] for c in cells)
    out["runtime_ceiling_min"] = min(c["ceiling"] for c in cells)
    out["static_dual_max"] = max(c["static_dual"] for c in cells)
    out["seeds"] = len({r["seed"] for r in rows})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(EVAL_SEEDS))
    parser.add_argument("--queries", type=int, default=N_QUERIES, help="queries per population (R1: 5,000)")
    parser.add_argument(
        "--rules",
        nargs="+",
        default=["dp", "myopic"],
        choices=["dp", "myopic", "lookahead"],
        help="rules measured: dp (the product's runtime controller), myopic (calibration), lookahead",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        nargs=3,
        default=[HORIZON.searches, HORIZON.chunks, HORIZON.steps],
        metavar=("SEARCHES", "CHUNKS", "STEPS"),
        help="the dynamic programme's horizon in the benchmark",
    )
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    parser.add_argument("--json", type=Path, default=None, help="write every row here too")
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        help="summarise rows of earlier --json runs (one a seed)",
    )
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.combine:
        rows = [r for path in args.combine for r in json.loads(path.read_text())["rows"]]
        summarise(rows, out, budgets=sorted({float(r["budget"]) for r in rows}))
    else:
        rows = run(
            args.seeds,
            args.queries,
            out,
            rules=args.rules,
            horizon=DPHorizon(*args.horizon),
            budgets=args.budgets,
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": out}, indent=2))
    print(" ".join(f"{k}={v:.4g}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
