"""``leadline runs ...`` and ``leadline db ...``: browse the record of runs and manage the database.

Two typer sub-apps the main CLI mounts with ``add_typer``. Every command takes ``--db URL`` (default:
the settings' database); a :class:`~leadline.errors.LeadlineError` becomes one line on stderr and exit
code 1, so scripts can rely on the status and users never see a traceback for a known failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from leadline.cli_shared import DbOption, cli_errors
from leadline.config import Settings
from leadline.storage import migrate
from leadline.storage.engine import display_url, make_engine, storage_errors
from leadline.storage.export import FORMATS, export_run
from leadline.storage.store import SqlRunStore

runs_app = typer.Typer(help="Browse the record of research runs.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the run database (schema upgrades).", no_args_is_help=True)


def _url(db: str | None) -> str:
    with cli_errors():  # a malformed setting in the environment is a one-line error too
        return db or Settings.from_env().database_url


@contextmanager
def _open_store(db: str | None) -> Iterator[SqlRunStore]:
    with cli_errors():
        store = SqlRunStore.from_url(_url(db))
        try:
            yield store
        finally:
            store.close()


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@runs_app.command("list")
def list_runs(
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs, newest first.")] = 20,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
) -> None:
    """List recent runs."""
    with _open_store(db) as store:
        runs = store.list_runs(limit=limit, status=status)  # type: ignore[arg-type]
    # Compact, so a full run id (what `show` and `export` take) still fits an 80-column terminal.
    console = Console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("run", no_wrap=True, min_width=32)
    status_width = max([6, *(len(r.status) for r in runs)])
    table.add_column("status", no_wrap=True, min_width=status_width)
    table.add_column("started UTC", no_wrap=True, min_width=11)
    table.add_column("tok/search", no_wrap=True, justify="right", min_width=10)
    question_width = max(8, console.width - (32 + status_width + 11 + 10) - 3 * 5)
    table.add_column("question", no_wrap=True, overflow="ellipsis", max_width=question_width)
    for run in runs:
        tokens = run.spend.get("tokens", run.spend.get("completion_tokens", "-"))
        table.add_row(
            run.run_id,
            run.status,
            run.created_at.strftime("%m-%d %H:%M") if run.created_at else "",
            f"{tokens}/{run.spend.get('searches', '-')}",
            Text(_short(run.question, 200)),  # user text: never read as markup
        )
    console.print(table)


@runs_app.command("show")
def show_run(run_id: str, db: DbOption = None) -> None:
    """Show one run: answer, spend and every recorded step."""
    with _open_store(db) as store:
        run = store.get_run(run_id)
        steps = store.list_steps(run_id)
        ledger = store.ledger_totals(run_id)
    console = Console()
    console.print(run.question, style="bold", markup=False, highlight=False)
    console.print(
        f"run {run.run_id}  status {run.status}  model {run.model or '-'}", markup=False, highlight=False
    )
    if run.settings.get("controller"):
        console.print(f"controller: {run.settings['controller']}", markup=False, highlight=False)
    if run.answer is not None:
        console.print("\n[bold]Answer[/bold]")
        console.print(run.answer, markup=False, highlight=False)
    if run.error:
        console.print(f"\nError: {run.error}", style="red", markup=False, highlight=False)
    for number, c in enumerate(run.citations, start=1):
        console.print(f"[{number}] {c.get('title', '')} {c.get('url', '')}", markup=False, highlight=False)
    spend = Table("prompt tokens", "completion tokens", "searches", "fetches", "LLM calls", "seconds")
    spend.add_row(
        str(ledger.prompt_tokens),
        str(ledger.completion_tokens),
        str(ledger.searches),
        str(ledger.fetches),
        str(ledger.llm_calls),
        f"{ledger.seconds:.2f}",
    )
    console.print(spend)
    table = Table("#", "node", "kind", "key", "tokens", "searches", "s")
    for i, s in enumerate(steps, start=1):
        table.add_row(
            str(i),
            s.node,
            s.kind,
            _short(s.key, 40),
            str(s.completion_tokens),
            str(s.searches),
            f"{s.seconds:.2f}",
        )
    console.print(table)


@runs_app.command("export")
def export(
    run_id: str,
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a run as Markdown, JSON or a self-contained HTML page."""
    with _open_store(db) as store:
        text = export_run(store, run_id, fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@runs_app.command("gc")
def gc(
    db: DbOption = None,
    older_than_days: Annotated[
        float, typer.Option("--older-than-days", min=0, help="Drop checkpoints of runs finished before this.")
    ] = 30.0,
) -> None:
    """Drop the resume checkpoints of finished runs (their answers, steps and ledger stay) and the
    stored bodies no run or page cache refers to any more."""
    with _open_store(db) as store:
        dropped = store.gc_checkpoints(older_than_days)
        bodies, freed = store.gc_documents()
    typer.echo(f"dropped the checkpoints of {dropped} finished run(s)")
    typer.echo(f"removed {bodies} unreferenced document(s), {freed / 1024:.1f} KiB")


@db_app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Bring the database schema to this leadline's version (runs do this on first use too)."""
    url = _url(db)
    with cli_errors():
        engine = make_engine(url)
        try:
            with storage_errors(url):
                state = migrate.upgrade(engine)
        finally:
            engine.dispose()
    typer.echo(f"{display_url(url)}: schema at {state.current} (newest)")


@db_app.command("current")
def current(db: DbOption = None) -> None:
    """Print the database's schema version and the newest this leadline knows."""
    url = _url(db)
    with cli_errors():
        engine = make_engine(url)
        try:
            with storage_errors(url):
                state = migrate.schema_state(engine)
        finally:
            engine.dispose()
    note = "up to date" if state.up_to_date else "run `leadline db upgrade`"
    typer.echo(f"{display_url(url)}: schema at {state.current or 'none'}, newest {state.head} ({note})")


__all__ = ["db_app", "runs_app"]
