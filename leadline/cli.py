"""The ``leadline`` command line: ask, batch, worker, index, models, runs, resume, db, serve-site.

Library errors become one line on stderr and a non-zero exit code at the one edge (``cli_shared``);
``-v`` shows the traceback. Live progress goes to stderr, so ``--json`` leaves nothing but the result on
stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from leadline import cli_batch, cli_tune
from leadline.cli_runs import db_app, runs_app
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
    is_verbose,
    research_settings,
    set_verbose,
)
from leadline.config import Settings
from leadline.controller_choice import choose_controller

try:  # typer vendors click from 0.23 on; before, it uses click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[assignment]


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (a non-numeric budget flag, an unknown option) as one line on stderr, exit code 2,
    like every other error of the CLI, instead of a usage banner and a boxed message."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        call = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*call, **extra)
        try:
            rv = super().main(*call, **extra)
        except NoArgsIsHelpError as exc:  # bare `leadline`: the help was printed already
            sys.exit(exc.exit_code)
        except ClickException as exc:
            message = " ".join(exc.format_message().split())
            err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="leadline",
    help="Deep research with a two-axis budget: answers research questions with cited sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    set_verbose(verbose)


_guard = guard  # the one error edge (leadline.cli_shared); the commands below call it by this name


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


class _Progress:
    """Live progress on stderr: step, action and budget left."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._status: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._status = err.status("starting", spinner="dots")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        budget = f"{event['tokens_left']} tokens, {event['searches_left']} searches left"
        line = f"[dim]step {event['step']:>2}[/] [bold]{event['node']:<7}[/] {event['detail']}"
        err.print(f"{line}  [dim]({budget})[/]", highlight=False, soft_wrap=True)
        if self._status is not None:
            self._status.update(f"{event['node']}: {budget}")


def _excerpt(passage: str, answer: str, width: int = 240) -> str:
    """The sentence of a cited passage that holds the answer (or its first sentence), for display."""
    from leadline.agent.reader import sentences, supporting_sentence

    found = supporting_sentence(answer, passage) or next(iter(sentences(passage)), "")
    return found if len(found) <= width else found[:width].rsplit(" ", 1)[0] + " ..."


def _confidence_line(result: Any) -> str:
    """How sure the run is and why, in one line."""
    figure = f"{result.confidence:.2f}" if result.confidence is not None else ""
    basis = getattr(result, "confidence_basis", "") or ""
    detail = ", ".join(x for x in (figure, basis) if x)
    if getattr(result, "unsure", False):
        return f"[yellow]Unsure[/] - treat this answer as a guess ({detail or 'no support found'})"
    return f"[bold]Confidence:[/] {detail or 'not measured'}"


def _print_result(result: Any, *, as_json: bool, out_file: Path | None = None) -> None:
    if out_file is not None:
        body = result.report if result.report else _answer_markdown(result)
        try:
            out_file.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
        except OSError as exc:
            err.print(f"[red]error:[/] cannot write {out_file}: {exc.strerror or exc}", highlight=False)
            raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return
    if result.report:
        if sys.stdout.isatty():
            from rich.markdown import Markdown

            out.print(Markdown(result.report))
        else:  # piped or redirected: the Markdown itself, not terminal-wrapped text
            sys.stdout.write(result.report if result.report.endswith("\n") else result.report + "\n")
    else:
        label = "Best guess" if getattr(result, "unsure", False) else "Answer"
        out.print(f"\n[bold]{label}:[/] {result.answer}", highlight=False)
        out.print(_confidence_line(result), highlight=False)
        for c in result.citations:
            support = getattr(c, "support", "") or _excerpt(c.passage, result.answer)
            out.print(f"  [{c.n}] [bold]{c.title}[/] ({c.source})\n      {support}", highlight=False)
    s = result.spend
    forced = f", answer forced by the {result.forced} limit" if result.forced else ""
    if result.overrun:  # a backend spent past its grant: say by how much
        forced += " (overrun: " + ", ".join(f"{k} {v:g}" for k, v in result.overrun.items()) + ")"
    err.print(
        f"[dim]run {result.run_id}: {s.tokens} tokens generated ({s.prompt_tokens} read), "
        f"{s.searches} searches, {s.seconds:.1f} s{forced}[/]",
        highlight=False,
    )


def _answer_markdown(result: Any) -> str:
    """An answer-mode result as Markdown (for ``--out``)."""
    lines = [f"**Answer:** {result.answer}", ""]
    if getattr(result, "unsure", False):
        lines += [f"_Unsure: {result.confidence_basis or 'no support found'}._", ""]
    for c in result.citations:
        support = getattr(c, "support", "") or _excerpt(c.passage, result.answer)
        lines.append(f"[{c.n}] {c.title} ({c.source}): {support}")
    return "\n".join(lines)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The research question.")],
    budget_tokens: Annotated[int, typer.Option(help="Generated tokens the run may spend.")] = 1024,
    budget_searches: Annotated[int, typer.Option(help="Search calls the run may make.")] = 4,
    budget_seconds: Annotated[float | None, typer.Option(help="Wall-clock limit in seconds.")] = None,
    budget_thinks: Annotated[
        int | None,
        typer.Option(
            help="Think steps the run may take (default: as many as the tokens allow). 0 answers straight "
            "from the sources: with --budget-searches 1, one search and an answer."
        ),
    ] = None,
    search_cost: SearchCostOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    corpus: CorpusOption = None,
    search: SearchOption = None,
    searxng_url: SearxngUrlOption = None,
    search_links: SearchLinksOption = None,
    report: Annotated[bool, typer.Option("--report", help="Write a long-form cited report.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout only.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the report (or answer) as Markdown to this file.")
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    controller: Annotated[
        str,
        typer.Option(
            help="auto (the runtime controller: stop/continue by its belief, fitted on this model's traces "
            "when a fitted controller exists, else on its priors; -v shows which and why each decision), "
            "runtime (the same), adaptive (the two-axis controller, no run-time stopping) or fixed (spend "
            "the budget as given)."
        ),
    ] = "auto",
    tuned: Annotated[
        Path | None,
        typer.Option(
            help="A fitted runtime controller from `leadline tune --traces ... --save`, or an outcome-table "
            "controller from `leadline tune --save` (implies --controller adaptive)."
        ),
    ] = None,
    trace: Annotated[
        str | None, typer.Option(help="otlp: OpenTelemetry spans over OTLP (or set the OTEL_* variables).")
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show which controller runs, on what numbers, and why each decision."
        ),
    ] = False,
) -> None:
    """Research a question and print the answer with its citations."""
    if verbose:
        set_verbose(True)
    from leadline.api import Researcher
    from leadline.budgets.ledger import Budget

    def run() -> Any:
        from leadline.agent import tracing

        tracing.configure(trace)
        settings = research_settings(
            model=model,
            base_url=base_url,
            corpus=corpus,
            db=db,
            search=search,
            searxng_url=searxng_url,
            search_links=search_links,
        )
        budget = Budget(
            tokens=budget_tokens,
            searches=budget_searches,
            seconds=budget_seconds,
            thinks=budget_thinks,
            search_cost_tokens=search_cost,
        )
        choice = choose_controller(controller, tuned, settings)
        if is_verbose():
            err.print(f"controller: {choice.kind} ({choice.source})", highlight=False, soft_wrap=True)
        with (
            Researcher(settings, controller=choice.factory) as researcher,
            _Progress(not quiet) as progress,
        ):
            return researcher.research(
                question, budget=budget, mode="report" if report else "answer", progress=progress
            )

    result = _guard(run)
    if is_verbose():  # which controller ran, and why each stop/continue decision was taken
        for t in result.trace:
            if t.get("node") in ("assess", "decide"):
                err.print(
                    f"[dim]{t['node']}: {t.get('action', '')}: {t.get('detail', '')}[/]", highlight=False
                )
    _print_result(result, as_json=as_json, out_file=out_file)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The id of an interrupted run.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Finish an interrupted run without repeating any recorded LLM call or search."""
    from leadline.api import Researcher
    from leadline.wiring import make_store

    def run() -> Any:
        settings = _settings(db_url=db)
        store = make_store(settings)
        record = store.get_run(run_id)
        fields = Settings.__dataclass_fields__  # the run record also holds what is no setting (controller)
        saved = {k: v for k, v in record.settings.items() if v is not None and k in fields}
        settings = settings.with_(**saved)
        with Researcher(settings, store=store) as researcher, _Progress(not quiet) as progress:
            return researcher.resume(run_id, progress=progress)

    _print_result(_guard(run), as_json=as_json)


@app.command()
def index(
    path: Annotated[
        str, typer.Argument(help="JSONL of {id,title,text}, a folder of .txt/.md/.html, or 'demo'.")
    ],
    name: Annotated[str | None, typer.Option(help="Index name (default: 'demo' or the file's stem).")] = None,
) -> None:
    """Build a persistent BM25 index over a local corpus."""
    from leadline.tools.corpus_index import build_named_index

    index_name = name or ("demo" if path == "demo" else Path(path).stem)

    def run() -> Any:
        settings = _settings()
        with err.status(f"indexing {path}") as status:
            return build_named_index(
                path,
                settings.indexes_dir,
                name=index_name,
                progress=lambda n: status.update(f"indexing {path}: {n} passages"),
            )

    idx = _guard(run)
    err.print(f"index [bold]{index_name}[/]: {len(idx)} passages", highlight=False)


@app.command()
def models() -> None:
    """List the packaged models and whether they are installed."""
    from leadline.config import DEFAULT_MODEL
    from leadline.llm.models import model_status

    settings = _guard(_settings)
    table = Table()
    table.add_column("model", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for column in ("installed", "cached", "description"):
        table.add_column(column)
    for s in model_status(settings.models_dir):
        name = s.name + (" (default)" if s.name == DEFAULT_MODEL else "")
        size = f"{s.size / 1e9:.2f} GB" if s.size >= 1e9 else f"{s.size / 1e6:.0f} MB"
        table.add_row(
            name,
            size,
            "yes" if s.installed else f"no: {s.install}",
            "yes" if s.cached else "no",
            s.description,
        )
    out.print(table)


@app.command("serve-site")
def serve_site(
    source: Annotated[Path, typer.Argument(help="A directory or .tar.gz of HTML pages.")],
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    latency_ms: Annotated[float, typer.Option(help="Delay added to every response.")] = 0.0,
) -> None:
    """Serve a static site and a SearxNG-format search endpoint over it (for offline web research)."""
    from leadline.tools.site_server import run_site

    _guard(lambda: run_site(source, host=host, port=port, latency_s=latency_ms / 1000, echo=typer.echo))


@app.command("mcp")
def mcp_command(
    port: Annotated[
        int | None, typer.Option(help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address for --port (loopback by default).")] = "127.0.0.1",
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    corpus: CorpusOption = None,
    search: SearchOption = None,
    searxng_url: SearxngUrlOption = None,
    search_links: SearchLinksOption = None,
    db: DbOption = None,
) -> None:
    """Serve research, report and runs as MCP tools (stdio; streamable HTTP with --port)."""

    def run() -> None:
        try:
            from leadline.mcp_server import serve
        except ImportError as exc:
            from leadline.errors import ConfigError

            hint = "pip install 'leadline[mcp]'"
            raise ConfigError(f"leadline mcp needs the mcp extra: {hint} ({exc})") from exc
        settings = research_settings(
            model=model,
            base_url=base_url,
            corpus=corpus,
            db=db,
            search=search,
            searxng_url=searxng_url,
            search_links=search_links,
        )
        serve(settings, port=port, host=host)

    _guard(run)


app.command()(cli_tune.tune)
app.command("batch")(cli_batch.batch)
app.command("worker")(cli_batch.worker)
app.add_typer(runs_app, name="runs", help="Browse, export and clean up recorded runs.")
app.add_typer(db_app, name="db", help="Database operations (migrations).")


def main() -> None:
    """The ``leadline`` console script."""
    app()


if __name__ == "__main__":
    main()
