"""R1's runtime dual bound: the most that any policy seeing only R1's observables and signals can reach.

`benchmarks/runtime.py` measures the product's runtime controller on R1 (issue 11, point 2) against
references that see more than a policy can (the runtime ceiling reveals A and k before the run) or less
(the static dual bound sees no signals). This script computes the certificate between them: for every
price μ ≥ 0 and every policy π that decides from the observables and the signals so far,

    mean_i E[Q_i(π)] − μ·mean_i E[cost_i(π)]  ≤  mean_i V_i(μ),

where V_i(μ) is the Bayes-optimal value of query i's own stop/search/think problem at price μ (each
query's problem is independent of the others given its observables). So a policy whose mean expected
cost is at most B has mean expected quality at most min_μ [mean_i V_i(μ) + μ·B] (weak duality), and a
policy that matches a quality U needs a mean compute of at least the least c with that bound ≥ U.

V_i(μ) is solved exactly by the product's backward induction (:func:`leadline.budgets.runtime_dp.plan_runs`)
under R1's *generating* model, with nothing approximated that could lower it:
- the amplitude prior Beta(0.35, 0.6) on 64 Gauss–Jacobi nodes — every belief quantity is a ratio of
  integrals of a polynomial in A of degree ≤ 32 + 64 + 1 against the Beta weight, which 64 nodes
  integrate exactly (degree ≤ 127; checked here against the Beta moments);
- the true signal probabilities (0.9A / 0.3A after a search; 0.2 + 0.6A / 0.2 + 0.2A after a chunk);
- P(seen kind right) = 0.85 exactly; log σ and log τ given what is seen: the exact normal posteriors,
  their curves E[1 − e^(−x/θ)] by Gauss–Hermite on 64 nodes (checked against 128);
- the whole lattice the caps allow (32 searches, 64 chunks, 96 steps: 1.2 million states), no pruning.

The bound holds in expectation over R1's generator given each population's observables; one population
of 5,000 queries scatters around it (the script prints the programme's own realised quality at each
budget's price beside its expectation, which is the bound up to the price grid). Figures are shares of
each seed's realised uniform→oracle gap, as `benchmarks/runtime.py` reports them. The last line is
key=value figures.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.special import beta as beta_fn
from scipy.special import roots_jacobi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtime import (
    BUDGETS,
    CHUNK,
    EVAL_SEEDS,
    LAMBDA,
    MAX_C,
    MAX_S,
    N_QUERIES,
    R1Population,
    follow_plan,
    make_r1,
    references,
    seen_posteriors,
    signal_probs,
    true_quality,
    uniform_best,
)

from leadline.budgets.runtime import (
    RuntimeModel,
    SignalModel,
    lognormal_curve,
)
from leadline.budgets.runtime_dp import DPHorizon, DPPlan, plan_runs

FloatArray = npt.NDArray[np.float64]

ALPHA, BETA = 0.35, 0.6
NODES = 64
FULL = DPHorizon(MAX_S, MAX_C, MAX_S + MAX_C)
"""Every state the caps allow: nothing past it is reachable, so the programme is not truncated."""


def exact_model(nodes: int = NODES) -> RuntimeModel:
    """R1's generating model with its amplitude prior on Gauss–Jacobi nodes (exact for the beliefs)."""
    x, w = roots_jacobi(nodes, BETA - 1.0, ALPHA - 1.0)  # weight (1 − x)^(β−1) (1 + x)^(α−1) on [−1, 1]
    return RuntimeModel(
        amplitudes=tuple(((x + 1.0) / 2.0).tolist()),
        amplitude_weights=tuple((w / w.sum()).tolist()),
        search_signal=SignalModel(base=(0.0, 0.0, 0.0), slope=(0.9, 0.3, 0.9)),
        think_signal=SignalModel(base=(0.2, 0.2, 0.2), slope=(0.2, 0.6, 0.6)),
        source="R1's generating model (Gauss–Jacobi amplitude nodes)",
    )


def moment_error(model: RuntimeModel, degree: int = MAX_S + MAX_C + 1) -> float:
    """Largest relative error of the nodes' moments E[A^m], m ≤ degree, against the Beta's own."""
    a, w = model.grid, np.asarray(model.amplitude_weights)
    worst = 0.0
    for m in range(1, degree + 1):
        exact = beta_fn(ALPHA + m, BETA) / beta_fn(ALPHA, BETA)
        worst = max(worst, abs(float((w * a**m).sum()) - exact) / exact)
    return worst


def exact_inputs(pop: R1Population, nodes: int = NODES) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(kind prior, E[g_search | seen], E[g_chunk | seen]) under R1's generating priors."""
    kp = np.full((pop.n, 3), 0.075)
    kp[np.arange(pop.n), pop.seen_kind] = 0.85
    ms, sds, mt, sdt = seen_posteriors(pop)
    gs = lognormal_curve(ms, sds, MAX_S, nodes=nodes)
    gt = lognormal_curve(mt - math.log(CHUNK), sdt, MAX_C, nodes=nodes)
    return kp, gs, gt


def solve_values(
    model: RuntimeModel,
    inputs: tuple[FloatArray, FloatArray, FloatArray],
    price: float,
    cache: dict[tuple[bytes, DPHorizon], FloatArray],
    *,
    block: int = 128,
    pop: R1Population | None = None,
) -> tuple[FloatArray, tuple[float, float] | None]:
    """Each query's Bayes-optimal value V_i(μ); with ``pop``, also the programme's realised (quality,
    cost) on that population's signals (the plan followed from the start)."""
    kp, gs, gt = inputs
    n = len(kp)
    values = np.empty(n)
    s = np.zeros(n, np.int64)
    c = np.zeros(n, np.int64)
    hs = np.zeros(n, np.int64)
    hc = np.zeros(n, np.int64)
    probs = signal_probs(pop) if pop is not None else None
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        zero = np.zeros(len(rows), np.int64)
        plan: DPPlan = plan_runs(
            model,
            FULL,
            cache,
            kind_prior=kp[rows],
            gs=gs[rows],
            gt=gt[rows],
            counts=(zero, zero, zero, zero),
            price=price,
            costs=(LAMBDA, CHUNK),
            prune=False,
        )
        values[rows] = plan.value
        if pop is not None and probs is not None:
            follow_plan(pop, plan, rows, (s, hs, c, hc), probs)
    if pop is None:
        return values, None
    tokens, searches = (c * CHUNK).astype(np.float64), s.astype(np.float64)
    realised = (float(true_quality(pop, tokens, searches).mean()), float((tokens + LAMBDA * searches).mean()))
    return values, realised


def resample(pop: R1Population, rng: np.random.Generator) -> R1Population:
    """The same observables with latents drawn afresh from their posterior given them (R1's generator)."""
    n = pop.n
    right = rng.random(n) < 0.85
    kind = np.where(right, pop.seen_kind, (pop.seen_kind + rng.integers(1, 3, n)) % 3)
    ms, sds, mt, sdt = seen_posteriors(pop)
    return R1Population(
        kind=kind,
        log_sigma=ms + sds * rng.standard_normal(n),
        log_tau=mt + sdt * rng.standard_normal(n),
        amp=rng.beta(ALPHA, BETA, n),
        seen_kind=pop.seen_kind,
        seen_log_sigma=pop.seen_log_sigma,
        seen_log_tau=pop.seen_log_tau,
        u_search=pop.u_search,
        u_chunk=pop.u_chunk,
    )


def expected_references(
    pop: R1Population, budgets: Sequence[float], resamples: int, seed: int
) -> dict[float, tuple[float, float]]:
    """Per budget, uniform and oracle in expectation given the population's observables (what the bound
    conditions on): the mean over ``resamples`` populations with the same observables and fresh latents."""
    rng = np.random.default_rng(seed)
    sums = {b: [0.0, 0.0] for b in budgets}
    for _ in range(resamples):
        twin = resample(pop, rng)
        oracle, _static, _ceiling = references(twin, None)  # type: ignore[arg-type]
        for b in budgets:
            sums[b][0] += uniform_best(twin, b)[0] / resamples
            sums[b][1] += oracle(b) / resamples
    return {b: (u, o) for b, (u, o) in sums.items()}


def bound_at(points: dict[float, float], budget: float) -> tuple[float, float]:
    """min over the prices solved of mean V(μ) + μ·B (each is an upper bound), and the price attaining it."""
    best = min(points, key=lambda mu: points[mu] + mu * budget)
    return points[best] + best * budget, best


def least_compute(points: dict[float, float], target: float) -> float:
    """The least mean compute c with min_μ [mean V(μ) + μ·c] ≥ target (bisection; the bound rises in c)."""
    lo, hi = 0.0, LAMBDA * MAX_S + CHUNK * MAX_C
    if bound_at(points, hi)[0] < target:
        return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if bound_at(points, mid)[0] < target else (lo, mid)
    return hi


def refine(points: dict[float, float], budget: float) -> list[float]:
    """Prices worth solving next for one budget: midpoints (in log price) beside the best one so far, or
    a factor of 2 past it when it is the lowest or highest price solved."""
    prices = sorted(points)
    _, best = bound_at(points, budget)
    i = prices.index(best)
    out = [math.sqrt(prices[i - 1] * best) if i > 0 else best / 2.0]
    out.append(math.sqrt(prices[i + 1] * best) if i + 1 < len(prices) else best * 2.0)
    return out


def run_seed(
    seed: int, n: int, budgets: Sequence[float], prices: Sequence[float], rounds: int, resamples: int
) -> dict[str, float]:
    started = time.perf_counter()
    pop = make_r1(seed, n)
    model = exact_model()
    inputs = exact_inputs(pop)
    oracle, _static, ceiling = references(pop, None)  # type: ignore[arg-type]  # the adapter is unused there
    cache: dict[tuple[bytes, DPHorizon], FloatArray] = {}
    points: dict[float, float] = {}

    def solve(mu: float) -> None:
        values, _ = solve_values(model, inputs, mu, cache)
        points[mu] = float(values.mean())
        print(
            f"  seed {seed} price {mu:.4e}: mean V {points[mu]:.6f}  [{time.perf_counter() - started:.0f}s]",
            flush=True,
        )

    for mu in prices:
        solve(mu)
    for _ in range(rounds):
        for mu in sorted({m for b in budgets for m in refine(points, b)} - set(points)):
            solve(mu)
    out: dict[str, float] = {}
    expected = expected_references(pop, budgets, resamples, seed + 10_000)
    for budget in budgets:
        q_uni, _split = uniform_best(pop, budget)
        q_or = oracle(budget)
        gap = q_or - q_uni
        bound, mu = bound_at(points, budget)
        compute = least_compute(points, q_uni)
        _, realised = solve_values(model, inputs, mu, cache, pop=pop)
        assert realised is not None
        out[f"gap_{budget:.0f}"] = (bound - q_uni) / gap
        out[f"efficiency_{budget:.0f}"] = budget / compute
        out[f"ceiling_{budget:.0f}"] = (ceiling(budget) - q_uni) / gap
        out[f"realised_gap_{budget:.0f}"] = (realised[0] - q_uni) / gap
        e_uni, e_or = expected[budget]
        out[f"expected_gap_{budget:.0f}"] = (bound - e_uni) / (e_or - e_uni)
        out[f"expected_efficiency_{budget:.0f}"] = budget / least_compute(points, e_uni)
        print(
            f"seed {seed} B={budget:>5.0f}  uniform {q_uni:.4f}  oracle {q_or:.4f}  runtime dual bound "
            f"{bound:.4f} (price {mu:.3e}): closes at most {out[f'gap_{budget:.0f}']:.3f} of the gap, "
            f"efficiency at most {out[f'efficiency_{budget:.0f}']:.2f}x  |  the exact programme at that "
            f"price, realised on this population: quality {realised[0]:.4f} at cost {realised[1]:.0f} "
            f"(gap {out[f'realised_gap_{budget:.0f}']:.3f})  |  runtime ceiling "
            f"{out[f'ceiling_{budget:.0f}']:.3f}  |  given the observables, expected uniform {e_uni:.4f} and "
            f"oracle {e_or:.4f}: the bound closes at most {out[f'expected_gap_{budget:.0f}']:.3f} of that "
            f"gap, efficiency at most {out[f'expected_efficiency_{budget:.0f}']:.2f}x"
            f"  [{time.perf_counter() - started:.0f}s]",
            flush=True,
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(EVAL_SEEDS))
    parser.add_argument("--queries", type=int, default=N_QUERIES)
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    parser.add_argument(
        "--prices",
        type=float,
        nargs="+",
        default=[5e-6, 1e-5, 2e-5, 3e-5, 5e-5, 8e-5],
        help="prices solved first (per unit of cost); each budget's best is then refined",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="refinement rounds around each budget's best price"
    )
    parser.add_argument(
        "--resamples",
        type=int,
        default=8,
        help="fresh-latent twins per population for the expected references",
    )
    args = parser.parse_args(argv)
    model = exact_model()
    err = moment_error(model)
    probe = make_r1(args.seeds[0], 200)
    _kp, gs, gt = exact_inputs(probe)
    _, gs2, gt2 = exact_inputs(probe, nodes=2 * NODES)
    curve_err = max(float(np.abs(gs - gs2).max()), float(np.abs(gt - gt2).max()))
    print(
        f"amplitude nodes {NODES}: worst relative moment error to degree {MAX_S + MAX_C + 1}: {err:.1e}; "
        f"curve quadrature change at {2 * NODES} nodes: {curve_err:.1e}; lattice {FULL.size} states",
        flush=True,
    )
    per_seed = [
        run_seed(seed, args.queries, args.budgets, args.prices, args.rounds, args.resamples)
        for seed in args.seeds
    ]
    out: dict[str, float] = {}
    cells = []
    for budget in args.budgets:
        key = f"{budget:.0f}"
        cell = {
            k: float(np.mean([r[f"{k}_{key}"] for r in per_seed]))
            for k in ("gap", "efficiency", "ceiling", "realised_gap", "expected_gap", "expected_efficiency")
        }
        cells.append(cell)
        print(
            f"B={budget:.0f} (mean of {len(per_seed)} seeds): gap closed at most {cell['gap']:.3f}, "
            f"efficiency at most {cell['efficiency']:.2f}x (the exact programme realised "
            f"{cell['realised_gap']:.3f}); runtime ceiling {cell['ceiling']:.3f}; of the gap expected given "
            f"the observables, at most {cell['expected_gap']:.3f} "
            f"(efficiency {cell['expected_efficiency']:.2f}x)"
        )
    out["runtime_bound_gap_closed_min"] = min(c["gap"] for c in cells)
    out["runtime_bound_gap_closed_mean"] = float(np.mean([c["gap"] for c in cells]))
    out["runtime_bound_expected_gap_closed_mean"] = float(np.mean([c["expected_gap"] for c in cells]))
    out["runtime_bound_expected_efficiency_min"] = min(c["expected_efficiency"] for c in cells)
    out["runtime_bound_efficiency_min"] = min(c["efficiency"] for c in cells)
    out["runtime_bound_efficiency_max"] = max(c["efficiency"] for c in cells)
    print(" ".join(f"{k}={v:.4f}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
