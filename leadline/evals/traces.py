"""Anytime traces: what a run could see after every step, and what it would have answered had it stopped.

A trace is one run of a question at a generous budget (recorded by
:mod:`leadline.evals.trace_recorder`). After every step it keeps the signals the runtime controller
could see then and an "answer now" probe (its cost recorded, never charged to a policy evaluated on the
trace), plus the closed-book answer. Any stop/continue policy is then evaluated without running the
model again: its answer is the probe where it stops, its cost the compute up to there. The JSONL schema
is in ``docs/controller.md`` ("Anytime traces").

Here: reading with the bad-input rules (a trace with missing steps or unscored probes is reported and
skipped; traces of another model, or no train trace at all, is a one-line error), scoring probes against
the gold answers, fitting the runtime controller's belief (:class:`~leadline.budgets.runtime.RuntimeModel`)
on train traces, and the dev evaluation: every fixed budget, the fitted controller, the per-question
hindsight oracle, the compute to match the best fixed budget's F1 with a bootstrap interval, and the
F1 gained at equal compute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from leadline.budgets.runtime import SEARCH, STOP, THINK, RuntimeModel, RuntimePolicy, SignalModel
from leadline.errors import ConfigError
from leadline.evals.metrics import exact_match, token_f1

FloatArray = npt.NDArray[np.float64]

SCHEMA = "leadline.trace/1"


@dataclass(frozen=True)
class Probe:
    """The answer the run would give if it stopped here; ``cost`` is the probe's own tokens (not charged)."""

    answer: str
    cost: int
    f1: float | None = None
    em: float | None = None


@dataclass(frozen=True)
class TraceStep:
    """The state after one step: cumulative spend, the signals seen, and the "answer now" probe."""

    step: int
    action: str
    """"search" or "think"."""
    tokens: int
    """Reasoning tokens spent so far (the probes excluded)."""
    searches: int
    signals: dict[str, float | None]
    """new_docs, score_spread, evidence, answer_logprob, sample_agreement, bridge_entities, probe_agrees."""
    probe: Probe


@dataclass(frozen=True)
class Trace:
    """One question's anytime trace."""

    question_id: str
    question: str
    split: str
    model: str
    gold: tuple[str, ...]
    closed_book: Probe
    steps: tuple[TraceStep, ...]
    search_cost_tokens: float = 500.0
    schema: str = SCHEMA

    def cost(self, i: int) -> float:
        """Compute after step ``i`` (1-based; 0 = closed book): tokens + λ·searches."""
        if i == 0:
            return 0.0
        s = self.steps[i - 1]
        return float(s.tokens + self.search_cost_tokens * s.searches)

    def f1(self, i: int) -> float:
        """The F1 of the answer-now probe after ``i`` steps (0: the closed-book answer)."""
        probe = self.closed_book if i == 0 else self.steps[i - 1].probe
        return float(probe.f1) if probe.f1 is not None else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The trace as one JSON object (one line of a traces file)."""
        data = asdict(self)
        data["gold"] = list(self.gold)
        data["steps"] = [asdict(s) for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """Read one trace line written by :meth:`to_dict`."""
        steps = tuple(
            TraceStep(
                step=int(s["step"]),
                action=str(s["action"]),
                tokens=int(s["tokens"]),
                searches=int(s["searches"]),
                signals=dict(s.get("signals") or {}),
                probe=Probe(**s["probe"]),
            )
            for s in data["steps"]
        )
        return cls(
            question_id=str(data["question_id"]),
            question=str(data["question"]),
            split=str(data.get("split", "dev")),
            model=str(data["model"]),
            gold=tuple(data.get("gold") or ()),
            closed_book=Probe(**data["closed_book"]),
            steps=steps,
            search_cost_tokens=float(data.get("search_cost_tokens", 500.0)),
            schema=str(data.get("schema", SCHEMA)),
        )


@dataclass
class TraceSet:
    """Traces read from JSONL, and what was skipped and why (never fatal)."""

    traces: list[Trace] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Trace]:
        """The traces of one split (train or dev)."""
        return [t for t in self.traces if t.split == name]


def problem(trace: Trace) -> str | None:
    """Why a trace cannot be used (missing steps, unscored probes), or None."""
    if not trace.steps:
        return "no steps"
    numbers = [s.step for s in trace.steps]
    if numbers != list(range(1, len(numbers) + 1)):
        return f"missing steps (numbered {numbers[:6]}{'...' if len(numbers) > 6 else ''})"
    unscored = [s.step for s in trace.steps if s.probe.f1 is None]
    if trace.closed_book.f1 is None:
        unscored.insert(0, 0)
    if unscored:
        return f"unscored probes at steps {unscored[:6]}"
    return None


def read_traces(path: str | Path, *, model: str | None = None) -> TraceSet:
    """Read traces; bad lines and unusable traces are reported in ``skipped``; another model is an error."""
    out = TraceSet()
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"trace file {p} does not exist")
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            trace = Trace.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            out.skipped.append(f"line {n}: not a trace ({exc})")
            continue
        if model is not None and trace.model != model:
            raise ConfigError(f"{p} line {n}: a trace of model {trace.model!r}, not {model!r}")
        why = problem(trace)
        if why is not None:
            out.skipped.append(f"line {n} ({trace.question_id}): {why}")
            continue
        out.traces.append(trace)
    return out


def score(trace: Trace, gold: Iterable[str] | None = None) -> Trace:
    """The trace with every probe scored (F1 and EM) against the gold answers."""
    answers = tuple(gold) if gold is not None else trace.gold

    def scored(p: Probe) -> Probe:
        return Probe(p.answer, p.cost, token_f1(p.answer, answers), exact_match(p.answer, answers))

    steps = tuple(
        TraceStep(s.step, s.action, s.tokens, s.searches, s.signals, scored(s.probe)) for s in trace.steps
    )
    return Trace(
        trace.question_id,
        trace.question,
        trace.split,
        trace.model,
        answers,
        scored(trace.closed_book),
        steps,
        trace.search_cost_tokens,
        trace.schema,
    )


# -- signals and the fit --------------------------------------------------------------------------


def _signal_counts(trace: Trace, upto: int) -> tuple[int, int, int, int]:
    """(searches, relevant hits, thinks, converging) after ``upto`` steps, as the loop adapter counts them."""
    s = h = c = g = 0
    for step in trace.steps[:upto]:
        if step.action == "search":
            s += 1
            h += int((step.signals.get("new_docs") or 0) > 0)
        else:
            c += 1
        g += int(bool(step.signals.get("probe_agrees")))
    return s, h, c, g


def _amplitude(trace: Trace) -> float:
    """The revealed amplitude of a train trace: the best probe F1 along it (closed book included)."""
    return max(trace.f1(i) for i in range(len(trace.steps) + 1))


@dataclass(frozen=True)
class FittedTraces:
    """A runtime model fitted on train traces, with the curve scales and the kind prior it found."""

    model: RuntimeModel
    search_scale: float
    think_scale: float
    kind_prior: tuple[float, float, float]
    train_questions: int


def fit_runtime(train: Sequence[Trace], *, points: int = 32) -> FittedTraces:
    """Fit the belief's prior and signal likelihoods on train traces (method of moments, least squares).

    The amplitude of a trace is its best probe F1; its kind is which steps raised the probe's F1
    (searches only, thinks only, or both; none: the kind prior decides). Signal probabilities are linear in
    the amplitude per kind (least squares of each trace's signal rate); the curve scales minimise the
    squared error of amplitude × curve against the probes' F1.
    """
    if not train:
        raise ConfigError("no train traces to fit the runtime controller on")
    amp = np.array([_amplitude(t) for t in train])
    kinds = []
    for t in train:
        rise_s = rise_t = False
        for i, step in enumerate(t.steps, 1):
            if t.f1(i) > t.f1(i - 1) + 1e-9:
                rise_s |= step.action == "search"
                rise_t |= step.action != "search"
        kinds.append(2 if rise_s and rise_t else 0 if rise_s else 1 if rise_t else -1)
    kind = np.array(kinds)
    known = kind >= 0
    counts = np.bincount(kind[known], minlength=3).astype(float) + 1.0  # add-one smoothing
    kind_prior = tuple((counts / counts.sum()).tolist())
    kind_fit = np.where(known, kind, int(np.argmax(counts)))
    rates_s, rates_t = [], []
    for t in train:
        s, h, c, g = _signal_counts(t, len(t.steps))
        rates_s.append(h / s if s else np.nan)
        rates_t.append(g / max(1, len(t.steps)))
    rs, rt = np.array(rates_s), np.array(rates_t)
    base_s: list[float] = []
    slope_s: list[float] = []
    base_t: list[float] = []
    slope_t: list[float] = []
    for k in range(3):
        for rates, base, slope in ((rs, base_s, slope_s), (rt, base_t, slope_t)):
            sel = (kind_fit == k) & np.isfinite(rates)
            if sel.sum() < 3:
                sel = np.isfinite(rates)
            x = np.column_stack([np.ones(int(sel.sum())), amp[sel]])
            if len(x) >= 2 and np.ptp(amp[sel]) > 0:
                b, m = np.linalg.lstsq(x, rates[sel], rcond=None)[0]
            else:
                b, m = (float(np.nanmean(rates[sel])) if sel.any() else 0.5), 0.0
            base.append(float(np.clip(b, 0.0, 1.0)))
            slope.append(float(m))
    mean, var = float(np.clip(amp.mean(), 0.02, 0.98)), float(max(amp.var(), 1e-4))
    common = max(mean * (1.0 - mean) / var - 1.0, 0.05)
    model = RuntimeModel.beta_prior(
        max(mean * common, 0.05),
        max((1.0 - mean) * common, 0.05),
        search_signal=SignalModel((base_s[0], base_s[1], base_s[2]), (slope_s[0], slope_s[1], slope_s[2])),
        think_signal=SignalModel((base_t[0], base_t[1], base_t[2]), (slope_t[0], slope_t[1], slope_t[2])),
        points=points,
        source=f"fitted on {len(train)} train traces of {train[0].model}",
    )
    best: tuple[float, float, float] = (math.inf, 1.0, 1.0)
    for sigma in (0.5, 1.0, 2.0, 3.0, 5.0, 8.0):
        for tau in (0.5, 1.0, 2.0, 3.0, 5.0, 8.0):
            err = 0.0
            for t, a, k in zip(train, amp, kind_fit, strict=True):
                for i in range(1, len(t.steps) + 1):
                    s, _, c, _ = _signal_counts(t, i)
                    gs, gt = 1 - math.exp(-s / sigma), 1 - math.exp(-c / tau)
                    curve = gs if k == 0 else gt if k == 1 else gs * gt
                    err += (t.f1(i) - a * curve) ** 2
            if err < best[0]:
                best = (err, sigma, tau)
    prior = (kind_prior[0], kind_prior[1], kind_prior[2])
    return FittedTraces(model, best[1], best[2], prior, len(train))


def controller_stops(fitted: FittedTraces, trace: Trace, price: float) -> int:
    """The step (0 = closed book) where the fitted runtime controller, at ``price``, answers on this trace.

    The order of steps is the trace's; the controller decides only whether to take the next one.
    """
    n = len(trace.steps)
    s_cap = sum(1 for s in trace.steps if s.action == "search")
    c_cap = n - s_cap
    x_s, x_c = np.arange(s_cap + 1.0), np.arange(c_cap + 1.0)
    gs = (1 - np.exp(-x_s / fitted.search_scale))[None, :]
    gt = (1 - np.exp(-x_c / fitted.think_scale))[None, :]
    think_tokens = max(1.0, (trace.steps[-1].tokens / max(1, c_cap)) if c_cap else 1.0)
    policy = RuntimePolicy(
        fitted.model, search_cost=trace.search_cost_tokens, think_cost=think_tokens, blocks=(1, 3)
    )
    for i in range(0, n):
        s, h, c, g = _signal_counts(trace, i)
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
        nxt = trace.steps[i].action
        value = float(d.search_value[0] if nxt == "search" else d.think_value[0])
        if int(d.action[0]) == STOP or value <= float(d.stop_value[0]):
            return i
    return n


assert SEARCH != THINK  # the axis codes the policy uses


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
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The report as text, one line per figure."""
        lines = [
            "fixed budgets (steps: compute, F1): "
            + ", ".join(f"{s}: {c:.0f}, {f:.3f}" for s, c, f in self.fixed)
        ]
        lines.append(
            "runtime controller (price: compute, F1): "
            + ", ".join(f"{p:.1e}: {c:.0f}, {f:.3f}" for p, c, f in self.controller)
        )
        lines.append(
            f"best fixed budget: {self.best_fixed_steps} steps, F1 {self.best_fixed_f1:.3f} ± "
            f"{self.best_fixed_se:.3f} at {self.best_fixed_compute:.0f}; the controller matches it "
            f"(within its s.e.) at {self.compute_to_match:.0f} [{self.compute_interval[0]:.0f}, "
            f"{self.compute_interval[1]:.0f}]; F1 gain at equal compute {self.f1_gain_at_equal_compute:+.3f} "
            f"[{self.f1_gain_interval[0]:+.3f}, {self.f1_gain_interval[1]:+.3f}] "
            f"over {self.questions} questions"
        )
        return "\n".join(lines)


PRICES = tuple(float(x) for x in np.geomspace(1e-6, 1e-2, 17))


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
    n = len(dev)
    depth = min(len(t.steps) for t in dev)
    f1 = np.array([[t.f1(i) for i in range(depth + 1)] for t in dev])  # (n, depth + 1)
    cost = np.array([[t.cost(i) for i in range(depth + 1)] for t in dev])
    fixed = [(i, float(cost[:, i].mean()), float(f1[:, i].mean())) for i in range(depth + 1)]
    best_i = max(range(depth + 1), key=lambda i: (f1[:, i].mean(), -cost[:, i].mean()))
    best_f1, best_c = float(f1[:, best_i].mean()), float(cost[:, best_i].mean())
    best_se = float(f1[:, best_i].std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    stops = np.array([[min(controller_stops(fitted, t, p), depth) for t in dev] for p in prices])  # (P, n)
    rows = np.arange(n)
    ctl_f1 = np.array([f1[rows, s] for s in stops])  # (P, n)
    ctl_cost = np.array([cost[rows, s] for s in stops])
    controller = [
        (p, float(c.mean()), float(q.mean())) for p, c, q in zip(prices, ctl_cost, ctl_f1, strict=True)
    ]
    oracle = []
    for p in prices:
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
        f1_gain_interval=(float(np.nanquantile(gains, 0.025)), float(np.nanquantile(gains, 0.975))),
        questions=n,
        skipped=list(traces.skipped),
    )


__all__ = [
    "SCHEMA",
    "FittedTraces",
    "Probe",
    "Trace",
    "TraceSet",
    "TraceStep",
    "TracesReport",
    "controller_stops",
    "evaluate_traces",
    "fit_runtime",
    "problem",
    "read_traces",
    "score",
]
