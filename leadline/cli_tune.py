"""``leadline tune``: what each extra search or token buys — outcome tables, fitted controllers, traces
and the tuning report. Kept apart from ``cli.py`` so each command module stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadline.cli_shared import (
    BaseUrlOption,
    CorpusOption,
    DbOption,
    ModelOption,
    SearchLinksOption,
    SearchOption,
    SearxngUrlOption,
    guard,
    research_settings,
)

err = Console(stderr=True)
out = Console()


def _raise(exc: Exception) -> None:
    raise exc


def tune(
    questions_file: Annotated[
        Path | None,
        typer.Argument(
            help="Questions with gold answers: the project's JSONL, HotpotQA .json, MuSiQue .jsonl or "
            "FRAMES .csv/.tsv. Leave out with --no-run."
        ),
    ] = None,
    points: Annotated[str, typer.Option(help="Budget points TOKENSxSEARCHES, comma separated.")] = (
        "128x1,256x2,512x3"
    ),
    out: Annotated[
        Path, typer.Option(help="Outcome table JSONL (appended; rows already there are kept).")
    ] = Path("leadline-outcomes.jsonl"),
    split: Annotated[
        str, typer.Option(help="Split name for these rows (train rows fit, dev rows evaluate).")
    ] = ("dev"),
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            help="A fixed random sample of N questions (seeded: the same N every run; a larger N holds"
            " every smaller one, so a recording can grow), not the first N."
        ),
    ] = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    corpus: CorpusOption = None,
    search: SearchOption = None,
    searxng_url: SearxngUrlOption = None,
    search_links: SearchLinksOption = None,
    db: DbOption = None,
    save: Annotated[
        Path | None,
        typer.Option(help="Fit a controller on the table's train rows and save it here (for --tuned)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write an HTML and Markdown report with plots and recommended settings here."),
    ] = None,
    no_run: Annotated[
        bool, typer.Option("--no-run", help="Run nothing: summarize (and report on) the rows in --out.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    traces: Annotated[
        Path | None,
        typer.Option(
            help="Anytime traces (JSONL) instead of an outcome table: record them here (resumable; at "
            "--points' last point), then fit the runtime controller on the train traces and evaluate it "
            "on the dev traces; with --no-run, only fit and evaluate."
        ),
    ] = None,
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="With --traces: save the fitted runtime controller where `ask` and `batch` pick it up "
            "for this model by default ($LEADLINE_HOME/controllers/MODEL.json).",
        ),
    ] = False,
) -> None:
    """See what each extra search or token buys: run questions at a grid of budgets and score them.

    Prints mean quality and real spend per budget point; when the table holds train and dev rows, also
    compares uniform, adaptive and oracle allocation on it (curves fitted on train, scored on dev).
    With --save, fits a controller on the train rows for `ask --tuned` and `batch --tuned`; with
    --report DIR, writes the tuning report (plots, intervals, recommended settings) to DIR.
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from leadline.api import Researcher
    from leadline.errors import ConfigError
    from leadline.evals.datasets import load_questions, pick_questions
    from leadline.evals.outcomes import OutcomeTable
    from leadline.evals.sweep import done_rows, parse_points, run_sweep

    settings = guard(
        lambda: research_settings(
            model=model,
            base_url=base_url,
            corpus=corpus,
            db=db,
            search=search,
            searxng_url=searxng_url,
            search_links=search_links,
        )
    )
    if traces is not None:  # anytime traces (docs/traces.md), not an outcome table
        from leadline.cli_traces import tune_traces

        tune_traces(
            questions_file,
            traces,
            points=points,
            split=split,
            limit=limit,
            sample=sample,
            settings=settings,
            model=model,
            no_run=no_run,
            save=save,
            install=install,
            report=report,
            quiet=quiet,
        )
        return
    if install:
        guard(
            lambda: _raise(
                ConfigError("--install needs --traces (it installs a controller fitted on traces)")
            )
        )

    def run() -> OutcomeTable:
        if report is not None:
            from leadline.evals.report import check_report_dir

            check_report_dir(report)  # before the sweep, not after it
        if no_run:
            return OutcomeTable.read_jsonl(out)
        if questions_file is None:
            raise ConfigError("give a questions file, or --no-run to use the rows already in --out")
        grid = parse_points(points)
        items = pick_questions(load_questions(questions_file), limit=limit, sample=sample)
        done = done_rows(out)
        todo = sum((item.id, *point) not in done for item in items for point in grid)
        err.print(f"{len(items)} questions x {len(grid)} budget points: {todo} runs to do", highlight=False)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, disable=quiet or todo == 0, transient=True) as bar:
            task = bar.add_task("tuning", total=todo)

            def on_row(r: Any) -> None:
                bar.advance(task)
                bar.console.print(
                    f"{r.question_id} {r.tokens}x{r.searches}: f1 {r.f1:.2f}, "
                    f"spent {r.spent_tokens} tokens / {r.spent_searches} searches",
                    highlight=False,
                )

            async def sweep() -> None:
                async with Researcher(settings) as researcher:
                    await run_sweep(researcher, items, grid, out, split=split, on_row=on_row)

            asyncio.run(sweep())
        return OutcomeTable.read_jsonl(out)

    def read() -> OutcomeTable:
        table = run()
        if not len(table):
            raise ConfigError(f"{out} holds no outcome rows")
        return table

    table = guard(read)
    summary = Table("tokens x searches", "questions", "EM", "F1", "recall", "spent tokens", "spent searches")
    for tokens, searches, shape in table.budget_points():
        rows = [r for r in table if r.point == (tokens, searches, shape)]
        n = len(rows)
        summary.add_row(
            f"{tokens} x {searches}",
            str(n),
            f"{sum(r.em for r in rows) / n:.3f}",
            f"{sum(r.f1 for r in rows) / n:.3f}",
            f"{sum(r.recall for r in rows) / n:.3f}",
            f"{sum(r.spent_tokens for r in rows) / n:.0f}",
            f"{sum(r.spent_searches for r in rows) / n:.2f}",
        )
    out_console = Console()
    out_console.print(summary)
    if len(table.split("train")) and len(table.split("dev")) and len(table.budget_points()) >= 2:
        from leadline.evals.policies import evaluate_table

        out_console.print(guard(lambda: evaluate_table(table)).describe())
    tuned_model = None
    report_notes: list[str] = []
    if save is not None:
        from leadline.evals.tuning import fit_tuned

        tuned_model = guard(lambda: fit_tuned(table))
    elif report is not None and len(table.split("train")):
        from leadline.errors import LeadlineError
        from leadline.evals.tuning import fit_tuned

        try:
            tuned_model = fit_tuned(table)
        except LeadlineError as exc:  # the report still shows the fixed budgets
            report_notes.append(f"no tuned controller: {exc.message}")
    if save is not None and tuned_model is not None:
        model_file = tuned_model
        guard(lambda: model_file.save(save))
        scored = ", ".join(f"{k} {v:.3f}" for k, v in model_file.held_out.items())
        err.print(
            f"saved a tuned controller ({model_file.kind}; held-out train quality: {scored or 'n/a'})"
            f" to {save}; use it with --tuned {save}",
            highlight=False,
        )
    if report is not None:
        from leadline.evals.report import write_report

        target = report
        with err.status(f"writing the report to {target}"):
            data = guard(
                lambda: write_report(table, target, source=str(out), tuned=tuned_model, notes=report_notes)
            )
        rec = data.recommended
        hint = f"; recommended fixed budget {rec[0]} tokens x {rec[1]} searches" if rec else ""
        err.print(f"report: {target / 'report.html'} and {target / 'report.md'}{hint}", highlight=False)
