"""Fit the runtime controller on train traces, ship it, and evaluate it on dev traces.

- :func:`controller_stops`: where the runtime controller with given numbers answers on one trace. It runs
  the controller's own decision rule (:class:`~leadline.budgets.runtime.RuntimePolicy` with the curves
  and the "settled" rule of :class:`~leadline.budgets.runtime_controller.RuntimeController`) before each
  step of the trace's order; its answer is the probe where it stops, its cost the compute up to there.
- :func:`fit_controller`: the belief (:func:`leadline.evals.traces.fit_runtime`) and the stop rule — the
  price, chosen on the *train* traces as the cheapest at which the controller matches the best fixed
  budget's train F1 within its standard error — as a :class:`~leadline.budgets.fitted.FittedController`
  with its provenance (what ``tune --traces FILE --save/--install`` writes and ``ask``/``batch`` use).
- :func:`fit_stability`: how much the fit moves with the train sample — the fit repeated on bootstrap
  resamples of the train questions, each draw's stop rule read on dev.
- :func:`evaluate_traces`: fit on train, report on dev — every fixed budget (each step count; 0 is the
  closed-book answer), the controller at every price and at the train price, the per-question hindsight
  oracle, the compute the controller needs to match the best fixed budget's F1 (bootstrap interval over
  questions) and its F1 gain at equal compute.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from leadline.budgets.fitted import FittedController
from leadline.budgets.runtime import STOP, RuntimePolicy, lognormal_curve
from leadline.budgets.runtime_controller import RuntimeController
from leadline.errors import ConfigError
from leadline.evals.traces import FittedTraces, Trace, TraceSet, fit_runtime

FloatArray = npt.NDArray[np.float64]
MIN_SEARCHES = RuntimeController.min_searches
"""Searches the runtime controller takes before it may answer (as in the loop: never closed book)."""
PRICES = tuple(float(x) for x in np.geomspace(1e-6, 1e-2, 17))
"""The prices (quality per token-equivalent) the stop rule is chosen from and the curve is drawn at."""


def _counts(trace: Trace, upto: int) -> tuple[int, int, int, int, int]:
    """(searches, relevant hits, thinks, converging, converging thinks in a row) after ``upto`` steps."""
    s = h = c = g = row = 0
    for step in trace.steps[:upto]:
        if step.action == "search":
            s += 1
            h += int((step.signals.get("new_docs") or 0) > 0)
        else:
            c += 1
            agree = bool(step.signals.get("probe_agrees"))
            g += int(agree)
            row = row + 1 if agree else 0
    return s, h, c, g, row


Cache = dict[tuple[float, ...], tuple[float, float, float, bool]]
"""Decisions by state (counts, caps, costs, price): many traces pass through the same states."""


def controller_stops(fitted: FittedTraces, trace: Trace, price: float, cache: Cache | None = None) -> int:
    """The step where the runtime controller with ``fitted``'s numbers, at ``price``, answers on this
    trace. The order of steps is the trace's; the controller decides only whether to take the next one
    (its value for the trace's next axis against answering now), after its first search, which it always
    takes (its first rule, as in the loop: it never answers closed book). ``cache`` holds decisions already
    made with the same ``fitted`` numbers.
    """
    n = len(trace.steps)
    s_cap = sum(1 for s in trace.steps if s.action == "search")
    c_cap = n - s_cap
    think_tokens = max(1.0, (trace.steps[-1].tokens / c_cap) if c_cap else fitted.think_tokens)
    cache = {} if cache is None else cache
    policy: RuntimePolicy | None = None
    for i in range(n):
        s, h, c, g, row = _counts(trace, i)
        if s < MIN_SEARCHES and trace.steps[i].action == "search":
            continue  # the controller's first rule: at least one search before an answer
        settled = row >= 2
        key = (s, h, c, g, float(settled), s_cap, c_cap, think_tokens, trace.search_cost_tokens, price)
        if key not in cache:
            if policy is None:
                policy = RuntimePolicy(
                    fitted.model, search_cost=trace.search_cost_tokens, think_cost=think_tokens
                )
            gs = lognormal_curve(np.array([math.log(fitted.search_scale)]), fitted.scale_sd, s_cap)
            gt = lognormal_curve(np.array([math.log(fitted.think_scale)]), fitted.scale_sd, c_cap)
            if settled:  # the answer is settled (two converging thinks in a row): nothing more to gain
                gs[:, s:] = gs[:, s]
                gt[:, c:] = gt[:, c]
            d = policy.decide(
                kind_prior=np.asarray([fitted.kind_prior]),
                gs=gs,
                gt=gt,
                searches=np.array([s]),
                search_hits=np.array([h]),
                thinks=np.array([c]),
                think_hits=np.array([g]),
                price=price,
            )
            stop = int(d.action[0]) == STOP
            cache[key] = (float(d.stop_value[0]), float(d.search_value[0]), float(d.think_value[0]), stop)
        stop_value, search_value, think_value, stop = cache[key]
        value = search_value if trace.steps[i].action == "search" else think_value
        if stop or value <= stop_value:
            return i
    return n


def _matrices(traces: Sequence[Trace]) -> tuple[FloatArray, FloatArray, int]:
    """(F1, compute) of every trace after 0..depth steps (a trace past its end: its last step), and depth."""
    depth = max(len(t.steps) for t in traces)
    f1 = np.array([[t.f1(i) for i in range(depth + 1)] for t in traces])
    cost = np.array([[t.cost(i) for i in range(depth + 1)] for t in traces])
    return f1, cost, depth


def _best_fixed(f1: FloatArray, cost: FloatArray) -> tuple[int, float]:
    """The fixed step count of the best mean F1 (the cheapest of equals) and that F1's standard error."""
    n = f1.shape[0]
    best = max(range(f1.shape[1]), key=lambda i: (f1[:, i].mean(), -cost[:, i].mean()))
    se = float(f1[:, best].std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return best, se


@dataclass(frozen=True)
class PriceChoice:
    """The stop rule chosen on train traces: the price, and what it gave there."""

    price: float
    train_f1: float
    train_compute: float
    target_f1: float
    """The best fixed budget's train F1 less its standard error."""


def choose_price(
    fitted: FittedTraces, train: Sequence[Trace], prices: Sequence[float] = PRICES
) -> PriceChoice:
    """The cheapest price at which the controller matches the best fixed budget's train F1 within its
    standard error; if none does, the price of the best train F1 (the cheapest of equals)."""
    f1, cost, depth = _matrices(train)
    best, se = _best_fixed(f1, cost)
    target = float(f1[:, best].mean()) - se
    rows = np.arange(len(train))
    scored = []
    cache: Cache = {}
    for p in prices:
        stops = np.array([min(controller_stops(fitted, t, p, cache), depth) for t in train])
        scored.append((p, float(f1[rows, stops].mean()), float(cost[rows, stops].mean())))
    ok = [x for x in scored if x[1] >= target - 1e-12]
    p, q, c = min(ok, key=lambda x: (x[2], -x[0])) if ok else max(scored, key=lambda x: (x[1], -x[2]))
    return PriceChoice(price=p, train_f1=q, train_compute=c, target_f1=target)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (the provenance of a fit)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fit_controller(
    traces: TraceSet, *, model: str | None = None, traces_file: Path | None = None
) -> tuple[FittedController, FittedTraces, PriceChoice]:
    """Fit the runtime controller (belief and stop rule) on the train traces of one model.

    No train trace, or traces of several models (or of another model than ``model``), is a one-line error.
    """
    train = traces.split("train")
    if not train:
        raise ConfigError("no train traces: the runtime controller needs a train split to fit on")
    models = sorted({t.model for t in train})
    if len(models) > 1:
        raise ConfigError(f"train traces of several models ({', '.join(models)}): fit one model at a time")
    if model is not None and models[0] != model:
        raise ConfigError(f"the train traces are of model {models[0]!r}, not {model!r}")
    fitted = fit_runtime(train)
    choice = choose_price(fitted, train)
    provenance: dict[str, object] = {
        "train_questions": len(train),
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "leadline_version": _version(),
        "train_f1": round(choice.train_f1, 4),
        "train_compute": round(choice.train_compute, 1),
        "skipped_traces": len(traces.skipped),
    }
    if traces_file is not None:
        provenance["traces_file"] = Path(traces_file).name
        provenance["traces_sha256"] = file_sha256(Path(traces_file))
    controller = FittedController(
        model=models[0],
        runtime=fitted.model,
        search_scale=float(fitted.search_scale),
        token_scale=float(fitted.think_scale * fitted.think_tokens),
        kind_prior=fitted.kind_prior,
        price=choice.price,
        scale_sd=fitted.scale_sd,
        think_tokens=max(1, round(fitted.think_tokens)),
        provenance=provenance,
    )
    return controller, fitted, choice


def recording_cost(traces: Sequence[Trace]) -> dict[str, float]:
    """What recording cost, per trace and per step (means; seconds are wall time): the run itself, the
    "answer now" probes and the closed-book answer, and the probes' tokens."""
    timed = [t for t in traces if t.run_seconds is not None]
    steps = [s for t in timed for s in t.steps]
    if not timed or not steps:
        return {}
    run = float(np.mean([t.run_seconds or 0.0 for t in timed]))
    probe = float(np.mean([s.probe.seconds or 0.0 for s in steps]))
    closed = float(np.mean([t.closed_book.seconds or 0.0 for t in timed]))
    per_trace = len(steps) / len(timed)
    return {
        "traces": float(len(timed)),
        "steps_per_trace": per_trace,
        "run_seconds": run,
        "run_seconds_per_step": run / per_trace,
        "probe_seconds_per_step": probe,
        "probe_tokens_per_step": float(np.mean([s.probe.cost for s in steps])),
        "closed_book_seconds": closed,
        "trace_seconds": run + probe * per_trace + closed,
        "trace_over_run": (run + probe * per_trace + closed) / run if run > 0 else math.nan,
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("leadline")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "unknown"


@dataclass(frozen=True)
class TracesReport:
    """The dev evaluation of traces: every curve, and the headline figures with their intervals."""

    fixed: list[tuple[int, float, float]]
    """(steps, mean compute, mean F1) of every fixed budget (0 = closed book)."""
    controller: list[tuple[float, float, float]]
    """(price, mean compute, mean F1) of the fitted controller."""
    oracle: list[tuple[float, float, float]]
    """(price, mean compute, mean F1) of the per-question hindsight oracle."""
    best_fixed_steps: int
    best_fixed_f1: float
    best_fixed_se: float
    best_fixed_compute: float
    compute_to_match: float
    compute_interval: tuple[float, float]
    efficiency: float
    f1_gain_at_equal_compute: float
    f1_gain_interval: tuple[float, float]
    questions: int
    train_price: float = math.nan
    """The stop rule chosen on train; the figures below are the controller's on dev at that price."""
    at_train_price: tuple[float, float] = (math.nan, math.nan)
    """(mean compute, mean F1) on dev at the train price."""
    stops: list[int] = field(default_factory=list)
    """Where the controller stopped on each dev question at the train price (0 = closed book)."""
    fixed_se: list[float] = field(default_factory=list)
    """The standard error of each fixed budget's mean F1."""
    train_questions: int = 0
    skipped: list[str] = field(default_factory=list)
    search_first_compute: float = math.nan
    """The least mean compute of any policy that searches before it answers (the controller's class):
    every dev trace's compute at its first search."""

    @property
    def search_first_bound(self) -> float:
        """The most efficiency any policy that searches before it answers can reach: the best fixed
        budget's compute over :attr:`search_first_compute` (it can only spend more to match)."""
        c = self.search_first_compute
        return self.best_fixed_compute / c if c > 0 else math.inf

    @property
    def efficiency_at_train_price(self) -> float:
        """Best fixed compute over the controller's at the train price, when it matches within the s.e."""
        c, q = self.at_train_price
        if not (q >= self.best_fixed_f1 - self.best_fixed_se) or c <= 0:
            return math.nan
        return self.best_fixed_compute / c

    def describe(self) -> str:
        """The report as text, one line per figure."""
        c, q = self.at_train_price
        return "\n".join(
            [
                "fixed budgets (steps: compute, F1): "
                + ", ".join(f"{s}: {c:.0f}, {f:.3f}" for s, c, f in self.fixed),
                "runtime controller (price: compute, F1): "
                + ", ".join(f"{p:.1e}: {c:.0f}, {f:.3f}" for p, c, f in self.controller),
                f"best fixed budget: {self.best_fixed_steps} steps, F1 {self.best_fixed_f1:.3f} ± "
                f"{self.best_fixed_se:.3f} at {self.best_fixed_compute:.0f}; the controller matches it "
                f"(within its s.e.) at {self.compute_to_match:.0f} [{self.compute_interval[0]:.0f}, "
                f"{self.compute_interval[1]:.0f}]; F1 gain at equal compute "
                f"{self.f1_gain_at_equal_compute:+.3f} "
                f"[{self.f1_gain_interval[0]:+.3f}, {self.f1_gain_interval[1]:+.3f}] "
                f"over {self.questions} dev questions (fitted on {self.train_questions} train)",
                f"at the price chosen on train ({self.train_price:.2g}): F1 {q:.3f} at compute {c:.0f}",
                f"a policy that searches before it answers spends at least {self.search_first_compute:.0f} "
                f"on average: its efficiency is at most {self.search_first_bound:.2f}",
            ]
        )


@dataclass(frozen=True)
class FitDraw:
    """One fit on a bootstrap resample of the train traces, and what its stop rule does on dev."""

    price: float
    train_f1: float
    """On the resample, as :class:`PriceChoice` reads it."""
    train_compute: float
    dev_f1: float
    dev_compute: float


def fit_stability(traces: TraceSet, *, resamples: int, seed: int = 0) -> list[FitDraw]:
    """The fit (belief and price) repeated on ``resamples`` bootstrap resamples of the train questions
    (drawn with replacement, as many as there are), each draw's controller read on every dev trace.

    How far the draws spread says how much the shipped stop rule rests on which train questions were
    recorded: a rule chosen in most draws is a finding; one that flips between draws is noise.
    """
    train, dev = traces.split("train"), traces.split("dev")
    if not train or not dev:
        raise ConfigError("the fit's stability needs train traces to fit on and dev traces to read")
    f1, cost, depth = _matrices(dev)
    rows = np.arange(len(dev))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        sample = [train[i] for i in rng.integers(0, len(train), len(train))]
        fitted = fit_runtime(sample)
        choice = choose_price(fitted, sample)
        cache: Cache = {}  # one per draw: its decisions hold for its fitted numbers only
        stops = np.array([min(controller_stops(fitted, t, choice.price, cache), depth) for t in dev])
        draws.append(
            FitDraw(
                price=choice.price,
                train_f1=choice.train_f1,
                train_compute=choice.train_compute,
                dev_f1=float(f1[rows, stops].mean()),
                dev_compute=float(cost[rows, stops].mean()),
            )
        )
    return draws


def evaluate_traces(
    traces: TraceSet, *, prices: Sequence[float] = PRICES, bootstrap: int = 500, seed: int = 0
) -> TracesReport:
    """Fit on the train traces, evaluate on the dev traces (see the module docstring)."""
    train, dev = traces.split("train"), traces.split("dev")
    if not train:
        raise ConfigError("no train traces: the runtime controller needs a train split to fit on")
    if not dev:
        raise ConfigError("no dev traces to evaluate on")
    models = {t.model for t in train + dev}
    if len(models) > 1:
        raise ConfigError(f"traces of several models ({', '.join(sorted(models))}): fit one model at a time")
    fitted = fit_runtime(train)
    choice = choose_price(fitted, train, prices)
    n = len(dev)
    f1, cost, depth = _matrices(dev)
    fixed = [(i, float(cost[:, i].mean()), float(f1[:, i].mean())) for i in range(depth + 1)]
    fixed_se = [float(f1[:, i].std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0 for i in range(depth + 1)]
    best_i, best_se = _best_fixed(f1, cost)
    best_f1, best_c = float(f1[:, best_i].mean()), float(cost[:, best_i].mean())
    all_prices = sorted(set(prices) | {choice.price})
    cache: Cache = {}
    stops = np.array([[min(controller_stops(fitted, t, p, cache), depth) for t in dev] for p in all_prices])
    rows = np.arange(n)
    ctl_f1 = np.array([f1[rows, s] for s in stops])  # (P, n)
    ctl_cost = np.array([cost[rows, s] for s in stops])
    controller = [
        (p, float(c.mean()), float(q.mean())) for p, c, q in zip(all_prices, ctl_cost, ctl_f1, strict=True)
    ]
    at = all_prices.index(choice.price)
    oracle = []
    for p in all_prices:
        pick = (f1 - p * cost).argmax(axis=1)
        oracle.append((p, float(cost[rows, pick].mean()), float(f1[rows, pick].mean())))

    def match(idx: npt.NDArray[np.int64]) -> tuple[float, float]:
        """(compute to reach the best fixed F1 within its s.e., F1 gain at the best fixed compute)."""
        target = f1[idx, best_i].mean() - best_se
        q, c = ctl_f1[:, idx].mean(axis=1), ctl_cost[:, idx].mean(axis=1)
        ok = q >= target
        need = float(c[ok].min()) if ok.any() else math.inf
        equal = c <= cost[idx, best_i].mean() + 1e-9
        gain = float(q[equal].max() - f1[idx, best_i].mean()) if equal.any() else math.nan
        return need, gain

    need, gain = match(rows)
    rng = np.random.default_rng(seed)
    boots = [match(rng.integers(0, n, n)) for _ in range(bootstrap)]
    needs = np.array([b[0] for b in boots])
    gains = np.array([b[1] for b in boots])
    return TracesReport(
        fixed=fixed,
        controller=controller,
        oracle=oracle,
        best_fixed_steps=best_i,
        best_fixed_f1=best_f1,
        best_fixed_se=best_se,
        best_fixed_compute=best_c,
        compute_to_match=need,
        compute_interval=(float(np.quantile(needs, 0.025)), float(np.quantile(needs, 0.975))),
        efficiency=best_c / need if need > 0 else math.inf,
        f1_gain_at_equal_compute=gain,
        f1_gain_interval=(
            (float(np.nanquantile(gains, 0.025)), float(np.nanquantile(gains, 0.975)))
            if np.isfinite(gains).any()
            else (math.nan, math.nan)
        ),
        questions=n,
        train_price=choice.price,
        at_train_price=(float(ctl_cost[at].mean()), float(ctl_f1[at].mean())),
        stops=[int(x) for x in stops[at]],
        fixed_se=fixed_se,
        train_questions=len(train),
        skipped=list(traces.skipped),
        search_first_compute=float(np.mean([t.cost(t.first_search()) for t in dev])),
    )


__all__ = [
    "PRICES",
    "FitDraw",
    "PriceChoice",
    "TracesReport",
    "choose_price",
    "controller_stops",
    "evaluate_traces",
    "file_sha256",
    "fit_controller",
    "fit_stability",
    "recording_cost",
]
