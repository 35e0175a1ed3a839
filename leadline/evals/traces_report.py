"""The tuning report from a traces file (``leadline tune --traces FILE --no-run --report DIR``).

One recording serves both the runtime controller's fit (issue 11) and the tuning report (issue 14): the
fixed budgets are each step count of the traces (0 is the closed-book answer), the runtime controller is
fitted on the train traces (:mod:`leadline.evals.traces_eval`) and the per-question hindsight oracle
picks each question's best step. Plots (matplotlib, headless Agg canvas): quality against compute for
the three, with 95% bootstrap intervals for the fixed budgets and the controller at its train price;
quality against searches and against tokens spent; where the runtime controller stopped. The folder also
holds ``controller.json``, the fitted controller ``ask`` and ``batch`` take with ``--tuned``. The folder
is written atomically (:func:`leadline.evals.report_files.write_atomically`).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from leadline.budgets.fitted import FittedController
from leadline.evals.report_files import Interval, bootstrap, check_report_dir, write_atomically
from leadline.evals.traces import Trace
from leadline.evals.traces_eval import TracesReport


def _figure(width: float = 7.0, height: float = 4.4) -> Any:
    from matplotlib.figure import Figure  # the OO API on the Agg canvas: headless, no pyplot state

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _intervals(dev: list[Trace], report: TracesReport) -> tuple[list[Interval], Interval]:
    depth = len(report.fixed) - 1
    fixed = [bootstrap([t.f1(i) for t in dev]) for i in range(depth + 1)]
    controller = bootstrap([t.f1(s) for t, s in zip(dev, report.stops, strict=True)])
    return fixed, controller


def plot_quality_vs_compute(report: TracesReport, dev: list[Trace], path: Path, lam: float) -> None:
    """Quality against mean compute: fixed step counts, the controller's price curve, the oracle."""
    fixed, ctl = _intervals(dev, report)
    fig = _figure()
    ax = fig.add_subplot()
    xs = [c for _, c, _ in report.fixed]
    ax.errorbar(
        [x for x in xs],
        [i.mean for i in fixed],
        yerr=[[i.mean - i.low for i in fixed], [i.high - i.mean for i in fixed]],
        fmt="o-",
        color="#4c72b0",
        capsize=3,
        label="fixed budgets (steps; 0 = closed book)",
    )
    for (steps, c, _), i in zip(report.fixed, fixed, strict=True):
        ax.annotate(str(steps), (c, i.mean), textcoords="offset points", xytext=(4, -12), fontsize=7)
    ctl_pts = sorted((c, q) for _, c, q in report.controller)
    ax.plot([c for c, _ in ctl_pts], [q for _, q in ctl_pts], "s--", color="#dd8452", ms=3,
            label="runtime controller (fitted on train), by price")  # fmt: skip
    c0, _ = report.at_train_price
    ax.errorbar([c0], [ctl.mean], yerr=[[ctl.mean - ctl.low], [ctl.high - ctl.mean]], fmt="D",
                color="#c44e52", capsize=3, ms=7, label="runtime controller at the train price")  # fmt: skip
    ora = sorted((c, q) for _, c, q in report.oracle)
    ax.plot([c for c, _ in ora], [q for _, q in ora], "^:", color="#55a868", ms=3,
            label="oracle (hindsight, per question)")  # fmt: skip
    ax.set_xlabel(f"mean compute per question (reasoning tokens + {lam:g} x searches; closed book: 0)")
    ax.set_ylabel(f"F1 on dev ({report.questions} questions)")
    ax.set_title("Quality against compute (95% bootstrap intervals)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.savefig(path)


def plot_quality_vs_axis(report: TracesReport, dev: list[Trace], path: Path) -> None:
    """F1 of each fixed step count against the mean searches and the mean tokens spent by then."""
    fixed, _ = _intervals(dev, report)
    depth = len(report.fixed) - 1
    searches = [float(np.mean([t.steps[min(i, len(t.steps)) - 1].searches if i else 0 for t in dev]))
                for i in range(depth + 1)]  # fmt: skip
    tokens = [float(np.mean([t.steps[min(i, len(t.steps)) - 1].tokens if i else 0 for t in dev]))
              for i in range(depth + 1)]  # fmt: skip
    fig = _figure(10.0, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    err = [[i.mean - i.low for i in fixed], [i.high - i.mean for i in fixed]]
    for ax, xs, label in ((axes[0], searches, "searches"), (axes[1], tokens, "reasoning tokens")):
        ax.errorbar(xs, [i.mean for i in fixed], yerr=err, fmt="o-", capsize=3, ms=4)
        for k, (x, i) in enumerate(zip(xs, fixed, strict=True)):
            ax.annotate(str(k), (x, i.mean), textcoords="offset points", xytext=(4, -12), fontsize=7)
        ax.set_xlabel(f"{label} spent by that step (mean per question)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("F1 on dev")
    axes[0].set_title("Quality against searches (labels: steps)")
    axes[1].set_title("Quality against tokens (labels: steps)")
    fig.savefig(path)


def _best_step(trace: Trace) -> int:
    """The step of the trace's best probe F1 (the earliest of equals): the oracle's stop."""
    return max(range(len(trace.steps) + 1), key=lambda i: (trace.f1(i), -i))


def plot_stops(report: TracesReport, dev: list[Trace], path: Path) -> None:
    """Where the runtime controller stopped on each dev question, and the oracle's best step."""
    depth = len(report.fixed) - 1
    best = [_best_step(t) for t in dev]
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    bins = np.arange(depth + 2) - 0.5
    ax.hist([report.stops, best], bins=bins, label=["runtime controller (train price)", "oracle's best step"],
            color=["#dd8452", "#55a868"])  # fmt: skip
    ax.set_xlabel("steps taken before answering (0 = closed book)")
    ax.set_ylabel("dev questions")
    ax.set_title("Where the runtime controller stopped")
    ax.legend(fontsize=8)
    fig.savefig(path)


PLOTS = ("quality_vs_compute.png", "quality_vs_searches_tokens.png", "where_controller_stopped.png")


def _efficiency(report: TracesReport) -> str:
    """The efficiency in words: undefined when the best fixed budget costs nothing (closed book)."""
    e = float(report.efficiency)
    if math.isfinite(e):
        return f"efficiency {e:.2f}x"
    return "efficiency undefined: the best fixed budget is the closed-book answer, which costs nothing"


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def fixed_budget_flags(steps: int) -> str:
    """The ``ask``/``batch`` setting nearest a traces report's fixed budget of ``steps`` steps.

    A trace alternates a search and a think over what it brought, so ``steps`` steps are
    ⌈steps/2⌉ searches and ⌊steps/2⌋ thinks. One step (one search, then the answer) is the run of
    ``--budget-searches 1 --budget-thinks 0``; its answer can still differ from the probe's, whose prompt
    does not show the budget left (``benchmarks/one_step.py`` measures both). Past two steps the fixed
    controller's own order (it searches while searches bring new sources, and thinks once) only
    approximates the traces'.
    """
    if steps <= 0:
        return "none: the loop always searches once before it answers (closed book is a traces-only figure)"
    flags = f"`--controller fixed --budget-searches {(steps + 1) // 2} --budget-thinks {steps // 2}`"
    return flags if steps <= 2 else f"{flags} (nearest: the fixed controller thinks at most once)"


def _warning(report: TracesReport) -> list[str]:
    """A plain warning when the controller chosen on train falls short of the best fixed budget on dev."""
    _, f1 = report.at_train_price
    if math.isnan(f1) or f1 >= report.best_fixed_f1 - report.best_fixed_se:
        return []
    return [
        "",
        f"**On dev the controller chosen on train falls short of the best fixed budget** (F1 {f1:.3f} "
        f"against {report.best_fixed_f1:.3f} ± {report.best_fixed_se:.3f}): until it is refitted on more "
        f"train traces, prefer the fixed budget of {_steps(report.best_fixed_steps)}: "
        f"{fixed_budget_flags(report.best_fixed_steps)}.",
    ]


def _rows(report: TracesReport, fixed: list[Interval]) -> list[list[str]]:
    return [[str(s), f"{c:.0f}", str(i)] for (s, c, _), i in zip(report.fixed, fixed, strict=True)]


def _markdown(report: TracesReport, fixed: list[Interval], ctl: Interval, source: str, saved: bool) -> str:
    c0, _ = report.at_train_price
    lines = [
        "# Tuning report (from anytime traces)",
        "",
        f"Traces: `{source}`; fitted on {report.train_questions} train questions, evaluated on "
        f"{report.questions} dev questions; F1 with 95% bootstrap intervals over questions.",
        "",
        "## Recommended settings",
        "",
        "- Runtime controller: [`controller.json`](controller.json) "
        f"(stop rule: price {report.train_price:.2g}, "
        f"chosen on train): F1 {ctl} at mean compute {c0:.0f} on dev; "
        "`leadline ask --tuned controller.json ...`, `leadline batch QUESTIONS --tuned controller.json`"
        if saved
        else "- Runtime controller: not saved",
        f"- Best fixed budget: {_steps(report.best_fixed_steps)}, F1 {report.best_fixed_f1:.3f} ± "
        f"{report.best_fixed_se:.3f} at compute {report.best_fixed_compute:.0f}; as a setting: "
        f"{fixed_budget_flags(report.best_fixed_steps)}",
        *_warning(report),
        "",
        "## Quality against compute",
        "",
        "![quality against compute](quality_vs_compute.png)",
        "",
        "The controller matches the best fixed budget (within its s.e.) at compute "
        f"{report.compute_to_match:.0f} "
        f"[{report.compute_interval[0]:.0f}, {report.compute_interval[1]:.0f}] ({_efficiency(report)}); "
        f"F1 gain at equal compute {report.f1_gain_at_equal_compute:+.3f} "
        f"[{report.f1_gain_interval[0]:+.3f}, {report.f1_gain_interval[1]:+.3f}]. "
        "Like the loop, the controller searches before it answers, so it spends at least "
        f"{report.search_first_compute:.0f} on average and its efficiency is at most "
        f"{report.search_first_bound:.2f}x.",
        "",
        "| steps | compute | F1 (fixed) |",
        "|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in _rows(report, fixed)),
        "",
        "## Quality against searches and tokens",
        "",
        "![quality against searches and tokens](quality_vs_searches_tokens.png)",
        "",
        "## Where the runtime controller stopped",
        "",
        "![where the controller stopped](where_controller_stopped.png)",
        "",
    ]
    if report.skipped:
        lines += ["## Skipped traces", "", *(f"- {s}" for s in report.skipped), ""]
    return "\n".join(lines)


def _link(match: re.Match[str]) -> str:
    href = match.group(2).replace('"', "&quot;")
    return f'<a href="{href}">{match.group(1)}</a>'


def _inline(text: str) -> str:
    """One line of Markdown text as HTML: escaped, with its links, bold and code spans."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", _link, out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _html(markdown: str) -> str:
    """A plain HTML page of the Markdown (headings, images, lists, tables and paragraphs)."""
    esc = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>leadline tuning report (traces)</title>",
        "<style>body{font-family:sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
        "img{max-width:100%}</style></head><body>",
    ]
    table: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                cells = [esc(c.strip()) for c in line.strip("|").split("|")]
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            out.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("# "):
            out.append(f"<h1>{esc(line[2:])}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{esc(line[3:])}</h2>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            out.append(f"<img src='{esc(src.rstrip(')'))}' alt='{esc(alt)}'>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write_traces_report(
    report: TracesReport,
    dev: list[Trace],
    path: Path,
    *,
    source: str = "",
    fitted: FittedController | None = None,
) -> None:
    """Write report.md, report.html, the PNG plots and (with ``fitted``) controller.json to ``path``."""
    path = Path(path)
    check_report_dir(path)
    lam = dev[0].search_cost_tokens if dev else 500.0
    fixed, ctl = _intervals(dev, report)

    def build(scratch: Path) -> None:
        plot_quality_vs_compute(report, dev, scratch / PLOTS[0], lam)
        plot_quality_vs_axis(report, dev, scratch / PLOTS[1])
        plot_stops(report, dev, scratch / PLOTS[2])
        if fitted is not None:
            fitted.save(scratch / "controller.json")
        md = _markdown(report, fixed, ctl, source, fitted is not None)
        (scratch / "report.md").write_text(md, encoding="utf-8")
        (scratch / "report.html").write_text(_html(md), encoding="utf-8")

    write_atomically(path, build)


__all__ = ["PLOTS", "write_traces_report"]
