"""The tuning report: what each extra search or token buys, as plots people read (``tune --report DIR``).

From one outcome table (:mod:`leadline.evals.outcomes`) it draws, with matplotlib on the headless Agg
canvas (no display, no pyplot state):

- quality against compute: every fixed budget point (the uniform policy) and, at the same mean compute,
  the adaptive controller (curves fitted on train rows) and the oracle (actual outcomes), each with a
  95% bootstrap interval over the dev questions;
- quality against searches (one line per token budget) and against tokens (one per search budget);
- where the runs stopped: the share of the token budget and the searches each run actually used, per
  budget point (the loop answers as soon as it judges it can);

and writes ``report.md`` and ``report.html`` with the plots as PNG, the numbers behind them, and the
recommended settings: ``tuned.json`` (a :class:`~leadline.budgets.tuned.TunedModel` that ``ask`` and
``batch`` take with ``--tuned``) and the cheapest fixed budget within the best one's interval.

The report is built in a scratch folder beside ``DIR`` and moved into place at the end, so a failure
leaves no half-written report; :func:`check_report_dir` says before a long sweep whether ``DIR`` can be
written.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from leadline.budgets.cost import CostModel
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeTable
from leadline.evals.report_files import (
    Interval,
    bootstrap,
    check_report_dir,
    write_atomically,
)

__all__ = [
    "Interval",
    "ReportData",
    "bootstrap",
    "build_report_data",
    "check_report_dir",
    "write_atomically",
    "write_report",
]

FloatArray = npt.NDArray[np.float64]
Point = tuple[int, int, str]


@dataclass(frozen=True)
class PolicyPoint:
    """One policy at the mean compute of one fixed budget point: quality with its interval, compute used."""

    point: Point
    budget_compute: float
    quality: Interval
    compute: float


@dataclass
class ReportData:
    """Everything the report shows, computed from one outcome table."""

    metric: str
    search_cost_tokens: float
    questions: int
    """Questions in the evaluated split at every budget point."""
    split: str
    uniform: list[PolicyPoint]
    adaptive: list[PolicyPoint] = field(default_factory=list)
    oracle: list[PolicyPoint] = field(default_factory=list)
    by_point: dict[Point, dict[str, Any]] = field(default_factory=dict)
    """Per budget point: quality interval, mean spent tokens and searches, stop shares."""
    recommended: Point | None = None
    notes: list[str] = field(default_factory=list)


def _matrix(table: OutcomeTable, points: Sequence[Point], metric: str) -> FloatArray:
    ids = table.question_ids()
    index = {q: i for i, q in enumerate(ids)}
    col = {p: j for j, p in enumerate(points)}
    out = np.full((len(ids), len(points)), np.nan)
    for r in table:
        if r.point in col:
            out[index[r.question_id], col[r.point]] = r.score(metric)
    return out


def _policy_points(
    values: FloatArray, actual: FloatArray, points: Sequence[Point], costs: FloatArray
) -> list[PolicyPoint]:
    """The batch greedy on ``values`` (predicted or actual) at each fixed point's total compute."""
    from leadline.evals.policies import _prepared  # the evaluation's own greedy, not a copy of it

    prepared, base = _prepared(values, costs)
    rows = np.arange(actual.shape[0])
    out = []
    for j, point in enumerate(points):
        total = float(costs[j]) * actual.shape[0]
        plan = prepared.greedy(max(0.0, total - base))
        picks = np.array([q.tokens for q in plan.queries], dtype=np.int64)
        scores = actual[rows, picks]
        out.append(PolicyPoint(point, float(costs[j]), bootstrap(scores), float(costs[picks].mean())))
    return out


def build_report_data(
    table: OutcomeTable,
    *,
    metric: str = "f1",
    cost: CostModel | None = None,
    train_split: str = "train",
    dev_split: str = "dev",
    curves: str = "auto",
) -> ReportData:
    """Compute the report's figures: policies on the dev split (fitted on train), spend per point.

    ``curves`` is the adaptive policy's curve model (:data:`leadline.evals.policies.CURVE_MODELS`), or
    ``"auto"`` to choose it on held-out train questions as ``tune`` does.
    """
    from leadline.evals.policies import choose_curves, point_costs, predict_quality

    cost = cost or CostModel()
    points = table.budget_points()
    if not points:
        raise ConfigError("the outcome table is empty: nothing to report")
    dev_all = table.split(dev_split)
    split = dev_split if len(dev_all) else train_split
    evaluated = (dev_all if len(dev_all) else table.split(train_split)).complete(points)
    if not len(evaluated):
        raise ConfigError("no question has a row at every budget point: nothing to compare")
    costs = point_costs(points, cost)
    actual = _matrix(evaluated, points, metric)
    data = ReportData(
        metric=metric,
        search_cost_tokens=cost.search_cost_tokens,
        questions=actual.shape[0],
        split=split,
        uniform=[
            PolicyPoint(p, float(costs[j]), bootstrap(actual[:, j]), float(costs[j]))
            for j, p in enumerate(points)
        ],
    )
    for p in points:
        rows = [r for r in evaluated if r.point == p]
        data.by_point[p] = {
            "quality": bootstrap([r.score(metric) for r in rows]),
            "spent_tokens": float(np.mean([r.spent_tokens for r in rows])),
            "spent_searches": float(np.mean([r.spent_searches for r in rows])),
            "token_share": [r.spent_tokens / p[0] for r in rows],
            "searches_used": [r.spent_searches for r in rows],
        }
    train = table.split(train_split)
    if split == dev_split and len(train) and len(points) >= 2:
        chosen = curves
        if curves == "auto":
            chosen, held_out = choose_curves(train, points, costs, metric)
            scored = ", ".join(f"{k} {v:.3f}" for k, v in held_out.items()) or "too few train questions"
            data.notes.append(
                f"adaptive: curve model {chosen}, chosen on held-out train questions ({scored})"
            )
        pred = predict_quality(train, evaluated, points, metric, data.notes, curves=chosen)
        data.adaptive = _policy_points(pred, actual, points, costs)
        data.oracle = _policy_points(actual, actual, points, costs)
    else:
        why = "no train rows to fit on" if split == dev_split else f"no {dev_split} rows to evaluate on"
        data.notes.append(f"adaptive and oracle not shown: {why} (or fewer than 2 budget points)")
    best = max(data.uniform, key=lambda u: (u.quality.mean, -u.budget_compute))
    within = [u for u in data.uniform if u.quality.mean >= best.quality.low]
    data.recommended = min(within, key=lambda u: (u.budget_compute, u.point)).point
    return data


# -- plots ---------------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.4) -> Any:
    from matplotlib.figure import Figure  # the OO API on the Agg canvas: headless, no pyplot state

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _errorbar(ax: Any, pts: Sequence[PolicyPoint], label: str, style: str, color: str) -> None:
    xs = [p.compute for p in pts]
    ys = [p.quality.mean for p in pts]
    err = [[p.quality.mean - p.quality.low for p in pts], [p.quality.high - p.quality.mean for p in pts]]
    ax.errorbar(xs, ys, yerr=err, fmt=style, color=color, label=label, capsize=3, lw=1.5, ms=5)


def plot_quality_vs_compute(data: ReportData, path: Path) -> None:
    """Plot quality against mean compute: fixed budgets, adaptive and oracle, with intervals."""
    fig = _figure()
    ax = fig.add_subplot()
    _errorbar(ax, data.uniform, "fixed budgets (uniform)", "o-", "#4c72b0")
    if data.adaptive:
        _errorbar(ax, data.adaptive, "adaptive controller", "s--", "#dd8452")
        _errorbar(ax, data.oracle, "oracle (hindsight)", "^:", "#55a868")
    for u in data.uniform:
        ax.annotate(f"{u.point[0]}x{u.point[1]}", (u.compute, u.quality.mean), textcoords="offset points",
                    xytext=(4, -12), fontsize=7, color="#4c72b0")  # fmt: skip
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"mean compute per question (tokens + {data.search_cost_tokens:g} x searches)")
    ax.set_ylabel(f"{data.metric.upper()} on {data.split} ({data.questions} questions)")
    ax.set_title("Quality against compute (95% bootstrap intervals)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path)


def plot_quality_vs_axis(data: ReportData, path: Path) -> None:
    """Plot quality against searches and against tokens, one panel each."""
    fig = _figure(10.0, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    points = sorted(data.by_point)
    for ax, axis, other in ((axes[0], 1, 0), (axes[1], 0, 1)):
        for level in sorted({p[other] for p in points}):
            line = sorted((p for p in points if p[other] == level), key=lambda p: p[axis])
            xs = [data.by_point[p]["spent_searches" if axis == 1 else "spent_tokens"] for p in line]
            q = [data.by_point[p]["quality"] for p in line]
            err = [[i.mean - i.low for i in q], [i.high - i.mean for i in q]]
            name = f"{level} tokens" if other == 0 else f"{level} searches"
            ax.errorbar(xs, [i.mean for i in q], yerr=err, fmt="o-", capsize=3, label=name, ms=4)
        ax.set_xlabel("searches spent (mean per run)" if axis == 1 else "tokens spent (mean per run)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="budget", title_fontsize=7)
    axes[0].set_ylabel(f"{data.metric.upper()} on {data.split}")
    axes[0].set_title("Quality against searches")
    axes[1].set_title("Quality against tokens")
    fig.savefig(path)


def plot_stops(data: ReportData, path: Path) -> None:
    """Plot where runs stopped: the share of the token budget used and the searches used."""
    fig = _figure(10.0, 4.2)
    axes = fig.subplots(1, 2)
    points = sorted(data.by_point)
    labels = [f"{p[0]}x{p[1]}" for p in points]
    axes[0].boxplot([data.by_point[p]["token_share"] for p in points], tick_labels=labels)
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set_ylabel("share of the token budget spent")
    axes[0].set_title("Where runs stopped: tokens")
    bottom = np.zeros(len(points))
    top = max(p[1] for p in points)
    cmap = [f"C{k}" for k in range(top + 1)]
    for k in range(top + 1):
        shares = np.array([np.mean(np.asarray(data.by_point[p]["searches_used"]) == k) for p in points])
        if shares.any():
            axes[1].bar(
                labels, shares, bottom=bottom, color=cmap[k], label=f"{k} search" + ("" if k == 1 else "es")
            )
            bottom += shares
    axes[1].set_ylabel("share of runs")
    axes[1].set_title("Where runs stopped: searches used")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("budget (tokens x searches)")
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    fig.savefig(path)


PLOTS = (
    ("quality_vs_compute.png", "Quality against compute", plot_quality_vs_compute),
    ("quality_vs_searches_tokens.png", "Quality against searches and tokens", plot_quality_vs_axis),
    ("where_runs_stopped.png", "Where runs stopped", plot_stops),
)


# -- the documents -------------------------------------------------------------------------------------


def _tables(data: ReportData) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    head = ["budget", "compute", f"{data.metric} (uniform)", "spent tokens", "spent searches"]
    rows = [
        [
            f"{p[0]} x {p[1]}" + ("" if p[2] == "sequential" else f" {p[2]}"),
            f"{u.budget_compute:.0f}",
            str(data.by_point[p]["quality"]),
            f"{data.by_point[p]['spent_tokens']:.0f}",
            f"{data.by_point[p]['spent_searches']:.2f}",
        ]
        for u in data.uniform
        for p in [u.point]
    ]
    phead = ["at the compute of", "uniform", "adaptive", "adaptive compute", "oracle", "oracle compute"]
    prows = [
        [
            f"{u.point[0]} x {u.point[1]}",
            str(u.quality),
            str(a.quality),
            f"{a.compute:.0f}",
            str(o.quality),
            f"{o.compute:.0f}",
        ]
        for u, a, o in zip(data.uniform, data.adaptive, data.oracle, strict=False)
    ]
    return head, rows, phead, prows


def _markdown(data: ReportData, tuned: str | None, source: str) -> str:
    head, rows, phead, prows = _tables(data)

    def md(h: list[str], body: list[list[str]]) -> list[str]:
        return [
            "| " + " | ".join(h) + " |",
            "|" + "---|" * len(h),
            *("| " + " | ".join(r) + " |" for r in body),
        ]

    lines = [
        "# Tuning report",
        "",
        f"Outcome table: `{source}`; {data.questions} {data.split} questions at every one of "
        f"{len(data.uniform)} budget points; quality is {data.metric.upper()} with 95% bootstrap intervals "
        f"over questions; compute is tokens + {data.search_cost_tokens:g} x searches (λ).",
        "",
        "## Recommended settings",
        "",
    ]
    if data.recommended is not None:
        t, s, _ = data.recommended
        lines.append(
            f"- Fixed budget: the cheapest point whose quality is within the best point's interval: "
            f"`leadline ask --budget-tokens {t} --budget-searches {s} ...`"
        )
    if tuned:
        lines.append(
            f"- Adaptive: [`{tuned}`]({tuned}), fitted on the train rows: "
            f"`leadline ask --tuned {tuned} ...` or `leadline batch QUESTIONS --tuned {tuned}`"
        )
    lines += ["", "## Quality against compute", "", "![quality against compute](quality_vs_compute.png)", ""]
    if prows:
        lines += [*md(phead, prows), ""]
    lines += [
        "## Quality against searches and tokens",
        "",
        "![quality against searches and tokens](quality_vs_searches_tokens.png)",
        "",
        *md(head, rows),
        "",
        "## Where runs stopped",
        "",
        "The loop answers when it judges it can; these show how much of each budget runs actually used.",
        "",
        "![where runs stopped](where_runs_stopped.png)",
        "",
    ]
    if data.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in data.notes), ""]
    return "\n".join(lines)


def _html(data: ReportData, tuned: str | None, source: str) -> str:
    head, rows, phead, prows = _tables(data)
    esc = html.escape

    def table(h: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{esc(c)}</th>" for c in h)
        trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    rec = []
    if data.recommended is not None:
        t, s, _ = data.recommended
        rec.append(
            f"<li>Fixed budget: <code>leadline ask --budget-tokens {t} --budget-searches {s}</code></li>"
        )
    if tuned:
        rec.append(
            f'<li>Adaptive: <a href="{esc(tuned)}">{esc(tuned)}</a>, fitted on the train rows: '
            f"<code>leadline ask --tuned {esc(tuned)}</code>, "
            f"<code>leadline batch … --tuned {esc(tuned)}</code></li>"
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>leadline tuning report</title>",
        "<style>body{font-family:sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
        "text-align:right}img{max-width:100%}</style></head><body>",
        "<h1>Tuning report</h1>",
        f"<p>Outcome table <code>{esc(source)}</code>: {data.questions} {esc(data.split)} questions at every "
        f"one of {len(data.uniform)} budget points; {esc(data.metric.upper())} with 95% bootstrap intervals; "
        f"compute is tokens + {data.search_cost_tokens:g} × searches.</p>",
        "<h2>Recommended settings</h2><ul>" + "".join(rec) + "</ul>",
        "<h2>Quality against compute</h2><img src='quality_vs_compute.png' alt='quality against compute'>",
        table(phead, prows) if prows else "",
        "<h2>Quality against searches and tokens</h2>"
        "<img src='quality_vs_searches_tokens.png' alt='quality against searches and tokens'>",
        table(head, rows),
        "<h2>Where runs stopped</h2><img src='where_runs_stopped.png' alt='where runs stopped'>",
    ]
    if data.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in data.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    table: OutcomeTable,
    path: Path,
    *,
    metric: str = "f1",
    cost: CostModel | None = None,
    source: str = "",
    tuned: Any = None,
    curves: str = "auto",
    notes: Sequence[str] = (),
) -> ReportData:
    """Write the report (report.md, report.html, PNG plots, tuned.json if ``tuned``) to ``path``.

    ``tuned`` is a fitted :class:`~leadline.budgets.tuned.TunedModel` to save beside the report; ``notes``
    are added to the report's notes. All of it is built in a scratch folder next to ``path`` and moved
    into place only when complete.
    """
    path = Path(path)
    check_report_dir(path)
    data = build_report_data(table, metric=metric, cost=cost, curves=curves)
    data.notes.extend(notes)

    def build(scratch: Path) -> None:
        for name, _, draw in PLOTS:
            draw(data, scratch / name)
        tuned_name = None
        if tuned is not None:
            tuned.save(scratch / "tuned.json")
            tuned_name = "tuned.json"
        (scratch / "report.md").write_text(_markdown(data, tuned_name, source), encoding="utf-8")
        (scratch / "report.html").write_text(_html(data, tuned_name, source), encoding="utf-8")

    write_atomically(path, build)
    return data
