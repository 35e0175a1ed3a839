"""``leadline tune --traces FILE``: record anytime traces, fit the runtime controller on the train traces,
evaluate it on the dev traces, save or install it, and write the tuning report from the traces.

Kept apart from ``cli_tune.py`` so each command module stays small. docs/traces.md has the workflow.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from leadline.cli_shared import guard

err = Console(stderr=True)


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.4f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(b) else (math.inf if b == 0 else 0.0)


def tune_traces(
    questions_file: Path | None,
    traces: Path,
    *,
    points: str,
    split: str,
    limit: int | None,
    sample: int | None = None,
    settings: Any,
    model: str | None,
    no_run: bool,
    save: Path | None,
    install: bool,
    report: Path | None,
    quiet: bool,
) -> None:
    """Record (unless ``no_run``), then fit, evaluate, save/install and report as asked (see the module)."""
    from leadline.errors import ConfigError

    def record() -> None:
        if report is not None:
            from leadline.evals.report_files import check_report_dir

            check_report_dir(report)  # before the recording, not after it
        if no_run:
            return
        if questions_file is None:
            raise ConfigError(
                "--traces needs a questions file to record (or --no-run to use the traces in it)"
            )
        from leadline.evals.trace_recorder import record_traces_cli

        record_traces_cli(
            questions_file,
            traces,
            points,
            split,
            limit,
            settings,
            (lambda _: None) if quiet else _progress,
            sample=sample,
        )

    guard(record)
    guard(lambda: _fit_and_evaluate(traces, settings, model, no_run, save, install, report))


def _progress(line: str) -> None:
    """One progress line of a recording, whole (a log file is not wrapped at 80 columns) and literal."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _fit_and_evaluate(
    traces: Path,
    settings: Any,
    model: str | None,
    no_run: bool,
    save: Path | None,
    install: bool,
    report: Path | None,
) -> None:
    from leadline.errors import ConfigError
    from leadline.evals.traces import read_traces
    from leadline.evals.traces_eval import evaluate_traces, fit_controller, recording_cost

    ts = read_traces(traces, model=model)
    for why in ts.skipped:
        err.print(f"[yellow]skipped[/] {traces}: {why}", highlight=False, soft_wrap=True)
    cost = recording_cost(ts.traces)
    if cost:
        err.print(
            f"recording cost: {cost['steps_per_trace']:.1f} steps per trace; run {cost['run_seconds']:.1f} s "
            f"({cost['run_seconds_per_step']:.1f} s per step), probes {cost['probe_seconds_per_step']:.1f} s "
            f"and {cost['probe_tokens_per_step']:.0f} tokens (prompt and answer) per step, closed book "
            f"{cost['closed_book_seconds']:.1f} s: a trace takes {cost['trace_seconds']:.1f} s, "
            f"{cost['trace_over_run']:.2f}x its run",
            highlight=False,
            soft_wrap=True,
        )
    train, dev = ts.split("train"), ts.split("dev")
    wants_fit = save is not None or install or report is not None
    if not train and (wants_fit or no_run):
        raise ConfigError(
            f"{traces} holds no usable train traces: the runtime controller has nothing to fit on"
        )
    if not train or (not dev and not wants_fit and not no_run):
        err.print(f"{traces}: {len(train)} train and {len(dev)} dev traces", highlight=False)
        return
    fitted = None
    if wants_fit:
        fitted, _, choice = fit_controller(ts, model=model, traces_file=traces)
        err.print(
            f"fitted the runtime controller on {len(train)} train traces of {fitted.model}: price "
            f"{choice.price:.2g} (train F1 {choice.train_f1:.3f} at compute {choice.train_compute:.0f}; "
            f"target {choice.target_f1:.3f})",
            highlight=False,
        )
        if save is not None:
            fitted.save(save)
            err.print(f"saved to {save}; use it with --tuned {save}", highlight=False)
        if install:
            from leadline.budgets.fitted import user_fitted_path

            where = user_fitted_path(settings.home, fitted.model)
            fitted.save(where)
            err.print(
                f"installed as {where}: `ask` and `batch` with --model {fitted.model} use it by default",
                highlight=False,
            )
    if not dev:
        if report is not None or no_run:
            raise ConfigError(f"{traces} holds no usable dev traces to evaluate on")
        return
    result = evaluate_traces(ts)
    low, high = result.compute_interval
    lines = [
        result.describe(),
        f"traces_efficiency_interval={_fmt(_ratio(result.best_fixed_compute, high))},"
        f"{_fmt(_ratio(result.best_fixed_compute, low))}",
        f"traces_efficiency_at_train_price={_fmt(result.efficiency_at_train_price)}",
        f"traces_efficiency_bound_search_first={_fmt(result.search_first_bound)}",
        f"traces_f1_gain_interval={_fmt(result.f1_gain_interval[0])},{_fmt(result.f1_gain_interval[1])}",
        f"traces_efficiency={_fmt(result.efficiency)}",
        f"traces_f1_gain_at_equal_compute={_fmt(result.f1_gain_at_equal_compute)}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if report is not None:
        from leadline.evals.traces_report import write_traces_report

        write_traces_report(result, dev, report, source=str(traces), fitted=fitted)
        err.print(f"report: {report / 'report.html'} and {report / 'report.md'}", highlight=False)


__all__ = ["tune_traces"]
