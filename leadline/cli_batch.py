"""``leadline batch`` and ``leadline worker``: many questions unattended, on one machine or many.

``leadline batch QUESTIONS`` opens (or continues) a batch in the run database, runs it with the chosen
executor and writes the reports; ``leadline batch status BATCH_ID`` shows a batch's progress from any
machine that reaches the database; ``leadline worker BATCH_ID`` adds a worker to a running batch. Known
failures are one line on stderr and a non-zero exit; Ctrl-C stops cleanly and the same command continues.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from leadline.cli_shared import (
    BaseUrlOption,
    CorpusOption,
    DbOption,
    ModelOption,
    SearchCostOption,
    SearchLinksOption,
    SearchOption,
    SearxngUrlOption,
    guard,
    research_settings,
)
from leadline.config import Settings
from leadline.controller_choice import choose_controller
from leadline.errors import ConfigError

err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
MAX_PROBLEMS_SHOWN = 20


def worker_clients() -> dict[str, Any]:
    """Clients the batch's workers use instead of building them from settings (a seam for tests)."""
    return {}


def _open_store(db: str | None) -> Any:
    from leadline.storage.store import SqlRunStore

    url = Settings.from_env(db_url=db).database_url
    store = SqlRunStore.from_url(url)
    store.ensure_schema()  # an unreachable database is one line here, before anything else
    return store


def batch(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="QUESTIONS | status BATCH_ID",
            help="A question file (.txt a question a line, .jsonl {id, question, ...}, .csv with a "
            "'question' column), or `status BATCH_ID`.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the reports (md, html, json per question; index.md/html)."),
    ] = None,
    tokens_per_question: Annotated[int, typer.Option(help="Mean generated tokens per question.")] = 512,
    searches_per_question: Annotated[int, typer.Option(help="Mean searches per question.")] = 3,
    thinks_per_question: Annotated[
        int | None,
        typer.Option(
            help="Think steps each question may take: a cap, not a mean (default: as the tokens allow; 0 "
            "answers straight from the sources)."
        ),
    ] = None,
    search_cost: SearchCostOption = None,
    total_budget: Annotated[
        str | None,
        typer.Option(help="TOKENS,SEARCHES for the whole batch (default: the per-question means times N)."),
    ] = None,
    controller: Annotated[
        str,
        typer.Option(
            help="auto (plan the batch, then stop/continue each run by the runtime controller, fitted on "
            "this model's traces when a fitted controller exists, else on its priors), runtime (the "
            "same), adaptive (plan the batch, no run-time stopping) or fixed."
        ),
    ] = "auto",
    fixed: Annotated[bool, typer.Option("--fixed", help="Same as --controller fixed.")] = False,
    tuned: Annotated[
        Path | None,
        typer.Option(
            help="A fitted runtime controller from `leadline tune --traces ... --save`, or an "
            "outcome-table controller from `leadline tune --save` (adaptive)."
        ),
    ] = None,
    report: Annotated[bool, typer.Option("--report", help="Write a long-form report per question.")] = False,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    corpus: CorpusOption = None,
    search: SearchOption = None,
    searxng_url: SearxngUrlOption = None,
    search_links: SearchLinksOption = None,
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option(help="Runs at once per worker (useful against vLLM).")] = 1,
    workers: Annotated[int, typer.Option(help="Worker processes on this machine.")] = 1,
    executor: Annotated[str, typer.Option(help="local (this machine) or ray.")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --executor ray).")
    ] = None,
    lease_seconds: Annotated[
        float, typer.Option(help="A dead worker's jobs go to another worker after this long.")
    ] = 60.0,
    sync_commit: Annotated[
        bool, typer.Option("--sync-commit", help="PostgreSQL: wait for the WAL flush at every commit.")
    ] = False,
    trace: Annotated[
        str | None, typer.Option(help="otlp: OpenTelemetry spans over OTLP (or set the OTEL_* variables).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="`status`: print JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
) -> None:
    """Research many questions unattended under one total budget; rerun the same command to continue.

    `leadline batch status BATCH_ID` shows a batch's progress from any machine that reaches its database.
    """
    if args and args[0] == "status":
        if len(args) != 2:
            err.print("[bold red]error:[/] usage: leadline batch status BATCH_ID", highlight=False)
            raise typer.Exit(2)
        status(args[1], db=db, as_json=as_json)
        return
    if len(args) != 1:
        err.print("[bold red]error:[/] give one question file (or: status BATCH_ID)", highlight=False)
        raise typer.Exit(2)
    from leadline.batch.inputs import read_questions
    from leadline.batch.plan import BatchOptions, batch_id_for, open_batch, parse_total_budget
    from leadline.batch.runner import BatchRun, Display, run_batch, summary_lines
    from leadline.budgets.ledger import Budget

    path = Path(args[0])
    name = "fixed" if fixed else controller
    started = time.monotonic()

    chosen: list[Any] = []

    def prepare() -> tuple[Any, Any, Any]:
        from leadline.agent import tracing

        tracing.configure(trace)
        if tuned is not None and name == "fixed":
            raise ConfigError("--tuned needs the adaptive controller (or the runtime one); drop --fixed")
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
        if executor not in ("local", "ray"):
            raise ConfigError(f"unknown executor {executor!r}; use local or ray")
        totals = parse_total_budget(total_budget) if total_budget else (None, None)
        settings = research_settings(
            model=model,
            base_url=base_url,
            corpus=corpus,
            db=db,
            search=search,
            searxng_url=searxng_url,
            search_links=search_links,
        )
        # a bad --tuned file is an error now, not in every worker
        choice = choose_controller(name, tuned, settings)
        chosen.append(choice)
        options = BatchOptions(
            per_question=Budget(
                tokens=tokens_per_question,
                searches=searches_per_question,
                thinks=thinks_per_question,
                search_cost_tokens=search_cost,
            ),
            total_tokens=totals[0],
            total_searches=totals[1],
            controller=choice.kind,  # type: ignore[arg-type]
            tuned=str(tuned.resolve()) if tuned is not None and choice.kind == "adaptive" else None,
            runtime=choice.fitted.to_dict() if choice.fitted is not None else None,
            mode="report" if report else "answer",
        )
        data = read_questions(path)
        store = _open_store(db)
        batch_id = batch_id_for(path, settings, options)
        record, added = open_batch(store, batch_id, data.questions, settings, options, name=path.name)
        return data, (store, settings, batch_id, record, added), options

    data, (store, settings, batch_id, _record, added), _options = guard(prepare)
    if not quiet:
        err.print(f"controller: {chosen[0].kind} ({chosen[0].source})", highlight=False, soft_wrap=True)
    for problem in data.problems[:MAX_PROBLEMS_SHOWN]:
        err.print(f"[yellow]{path}:{problem.line}:[/] {problem.message}", highlight=False)
    if len(data.problems) > MAX_PROBLEMS_SHOWN:
        err.print(f"... and {len(data.problems) - MAX_PROBLEMS_SHOWN} more lines left out", highlight=False)
    out_dir = out if out is not None else Path(f"{path.stem}-reports")
    progress = store.batch_progress(batch_id)
    err.print(
        f"batch [bold]{batch_id}[/]: {len(data.questions)} questions ({added} new, {progress.done} already "
        f"done); total {progress.total_tokens:,} tokens, {progress.total_searches:,} searches",
        highlight=False,
    )
    run = BatchRun(
        store=store,
        batch_id=batch_id,
        db_url=settings.database_url,
        executor="ray" if executor == "ray" else "local",
        workers=workers,
        concurrency=concurrency,
        lease_s=lease_seconds,
        out_dir=out_dir,
        ray_address=ray_address,
        base_urls=[u.strip() for u in (settings.base_url or "").split(",") if u.strip()],
        trace=trace,
        async_commit=not sync_commit,
        worker_kwargs={"settings": settings, "async_commit": not sync_commit, **worker_clients()},
    )
    display = Display(err, enabled=not quiet and err.is_terminal)

    def on_finished(job: Any) -> None:
        if quiet:
            return
        result = job.result or {}
        if job.status == "failed":
            display.line(f"[red]failed[/] {job.question_id}: {job.error}")
        else:
            spend = result.get("spend") or {}
            answer = " ".join(str(result.get("answer", "")).split())[:80]
            display.line(
                f"[green]done[/] {job.question_id}: {spend.get('tokens', 0)} tokens, "
                f"{spend.get('searches', 0)} searches: {answer}"
            )

    try:
        with display:
            final = guard(
                lambda: asyncio.run(run_batch(run, display=display, on_finished=on_finished)),
                on_interrupt=f"interrupted: rerun the same command to continue batch {batch_id}",
            )
    finally:
        store.close()
        _flush_traces()
    for line in summary_lines(final, out_dir, time.monotonic() - started):
        err.print(line, highlight=False)
    if final.failed:
        raise typer.Exit(1)


def _flush_traces() -> None:
    from leadline.agent import tracing

    try:
        tracing.shutdown()
    except Exception as exc:  # an exporter that cannot reach its collector must not fail the batch
        err.print(f"[yellow]warning:[/] could not export traces: {exc}", highlight=False)


def status(batch_id: str, *, db: str | None = None, as_json: bool = False) -> None:
    """Print a batch's progress: jobs by status, workers with live leases, the pool and the spend."""
    from leadline.batch.runner import describe

    def read() -> Any:
        store = _open_store(db)
        try:
            return store.batch_progress(batch_id), store.get_batch(batch_id)
        finally:
            store.close()

    progress, record = guard(read)
    if as_json:
        data = {k: getattr(progress, k) for k in progress.__dataclass_fields__}
        data["workers"] = list(progress.workers)
        data["name"] = record.name
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    out = Console()
    out.print(f"batch {batch_id} ({record.name or 'unnamed'}): {progress.status}", highlight=False)
    out.print(describe(progress), highlight=False)
    out.print(
        f"pool: {progress.pool_tokens:,} tokens, {progress.pool_searches:,} searches not granted",
        highlight=False,
    )
    out.print(f"workers: {', '.join(progress.workers) or 'none running'}", highlight=False)


def worker(
    batch_id: Annotated[str, typer.Argument(help="The batch to work on (printed by `leadline batch`).")],
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option(help="Runs at once in this worker.")] = 1,
    lease_seconds: Annotated[float, typer.Option(help="Lease length; renewed every third of it.")] = 60.0,
    sync_commit: Annotated[
        bool, typer.Option("--sync-commit", help="PostgreSQL: wait for the WAL flush at every commit.")
    ] = False,
    trace: Annotated[
        str | None, typer.Option(help="otlp: OpenTelemetry spans over OTLP (or set the OTEL_* variables).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Work on a batch until no job is left (from any machine that reaches its database)."""
    from leadline.batch.worker import BatchWorker

    def run() -> Any:
        from leadline.agent import tracing

        tracing.configure(trace)
        store = _open_store(db)
        try:
            settings = Settings.from_env(db_url=db)
            w = BatchWorker(
                store,
                batch_id,
                settings=settings,
                concurrency=concurrency,
                lease_s=lease_seconds,
                async_commit=not sync_commit,
                on_event=None
                if quiet
                else lambda e: err.print(
                    f"{e.kind} {e.job.question_id}" + (f": {e.error}" if e.error else "")
                ),
                **worker_clients(),
            )
            store.get_batch(batch_id)
            return asyncio.run(w.run())
        finally:
            store.close()
            _flush_traces()

    try:
        stats = guard(run)
    except KeyboardInterrupt:
        err.print("interrupted: the jobs in progress were given back", highlight=False)
        raise typer.Exit(130) from None
    if not quiet:
        err.print(f"worker {stats.worker}: {stats.done} done, {stats.failed} failed", highlight=False)


__all__ = ["batch", "status", "worker", "worker_clients"]
