"""Anytime traces: what a run could see after every step, and what it would have answered had it stopped.

A trace is one run of a question at a generous budget (recorded by
:mod:`leadline.evals.trace_recorder`). After every step it keeps the signals the runtime controller
could see then and an "answer now" probe (its cost recorded, never charged to a policy evaluated on the
trace), plus the closed-book answer. Any stop/continue policy is then evaluated without running the
model again: its answer is the probe where it stops, its cost the compute up to there. The JSONL schema
is in ``docs/controller.md`` ("Anytime traces").

Here: the schema, reading with the bad-input rules (a trace with missing steps or unscored probes is
reported and skipped; traces of another model is a one-line error), scoring probes against the gold
answers, and fitting the runtime controller's belief (:class:`~leadline.budgets.runtime.RuntimeModel`)
on train traces. The stop rule's fit, the shipped controller file and the dev evaluation are in
:mod:`leadline.evals.traces_eval`.
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

from leadline.budgets.runtime import RuntimeModel, SignalModel, lognormal_curve
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
    seconds: float | None = None
    """Wall time of the probe (recorded to measure what a trace costs; charged to no policy)."""


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
    run_seconds: float | None = None
    """Wall time of the recorded run itself (the probes and the closed-book answer excluded)."""
    search_backfill: bool = False
    """Whether the run's searches were filled with next-ranked unread documents (``search.BACKFILL``, off
    by default; a trace without the field was recorded before it existed, without backfill)."""
    search_links: int = 0
    """Linked passages each search brought besides its ``k`` (``Researcher.search_links``; a trace
    without the field was recorded before links existed, with none)."""

    def cost(self, i: int) -> float:
        """Compute after step ``i`` (1-based; 0 = closed book): tokens + λ·searches.

        Past the trace's last step the run had ended: its compute stays that of the last step.
        """
        i = min(i, len(self.steps))
        if i == 0:
            return 0.0
        s = self.steps[i - 1]
        return float(s.tokens + self.search_cost_tokens * s.searches)

    def first_search(self) -> int:
        """The number of steps up to and including the first search (the trace's length if it has none)."""
        return next((i for i, s in enumerate(self.steps, 1) if s.action == "search"), len(self.steps))

    def f1(self, i: int) -> float:
        """The F1 of the answer-now probe after ``i`` steps (0: the closed-book answer; past the last
        step, the last step's: the run had ended and answered).
        """
        i = min(i, len(self.steps))
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
            run_seconds=None if data.get("run_seconds") is None else float(data["run_seconds"]),
            search_backfill=bool(data.get("search_backfill", False)),
            search_links=int(data.get("search_links", 0)),
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
        return Probe(p.answer, p.cost, token_f1(p.answer, answers), exact_match(p.answer, answers), p.seconds)

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
        trace.run_seconds,
        trace.search_backfill,
        trace.search_links,
    )


# -- signals and the fit --------------------------------------------------------------------------


def _signal_counts(trace: Trace, upto: int) -> tuple[int, int, int, int]:
    """(searches, relevant hits, thinks, converging) after ``upto`` steps, as the loop adapter counts them:
    a search is a relevant hit when it brought new documents; a think step is converging when its probe
    repeats the previous answer (the loop: the candidate answer repeats itself).
    """
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
    think_tokens: float = 96.0
    """Reasoning tokens per think step in the train traces (turns the think scale into tokens)."""
    scale_sd: float = 0.0
    """Spread (log scale) of a question's curve scales around σ and τ."""


SCALES = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0)
SCALE_SDS = (0.0, 0.4, 0.8)


def _fit_scales(
    train: Sequence[Trace], amp: FloatArray, kind: npt.NDArray[np.int64]
) -> tuple[float, float, float]:
    """σ, τ (in steps) and their log-scale spread: least squares of amplitude × the expected curve
    (``lognormal_curve``, as the controller uses it) against every probe's F1 after every step."""
    rows = []
    for t, amplitude, kd in zip(train, amp, kind, strict=True):
        for i in range(1, len(t.steps) + 1):
            n_s, _, n_c, _ = _signal_counts(t, i)
            rows.append((n_s, n_c, int(kd), float(amplitude), t.f1(i)))
    if not rows:
        return 3.0, 3.0, 0.0
    counts = np.array([(r[0], r[1]) for r in rows], dtype=np.int64)
    k = np.array([r[2] for r in rows], dtype=np.int64)
    a = np.array([r[3] for r in rows], dtype=np.float64)
    f = np.array([r[4] for r in rows], dtype=np.float64)
    top = int(counts.max())
    best = (math.inf, 3.0, 3.0, 0.0)
    for sd in SCALE_SDS:
        curves = lognormal_curve(np.log(np.array(SCALES)), sd, top)  # (scales, top + 1)
        gs_all, gt_all = curves[:, counts[:, 0]], curves[:, counts[:, 1]]  # (scales, rows)
        for i, sigma in enumerate(SCALES):
            gs = gs_all[i][None, :]
            curve = np.where(k == 0, gs, np.where(k == 1, gt_all, gs * gt_all))  # (tau, rows)
            err = ((f[None, :] - a[None, :] * curve) ** 2).sum(axis=1)
            j = int(np.argmin(err))
            if err[j] < best[0] - 1e-12:
                best = (float(err[j]), sigma, SCALES[j], sd)
    return best[1], best[2], best[3]


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
        rates_t.append(g / c if c else np.nan)
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
    sigma, tau, sd = _fit_scales(train, amp, kind_fit)
    prior = (kind_prior[0], kind_prior[1], kind_prior[2])
    thinks = sum(1 for t in train for s in t.steps if s.action != "search")
    think_tokens = sum(t.steps[-1].tokens for t in train) / thinks if thinks else 96.0
    return FittedTraces(model, sigma, tau, prior, len(train), float(max(1.0, think_tokens)), sd)


__all__ = [
    "SCHEMA",
    "FittedTraces",
    "Probe",
    "Trace",
    "TraceSet",
    "TraceStep",
    "fit_runtime",
    "problem",
    "read_traces",
    "score",
]
