"""The ``leadline`` command line: ask, index, models, runs, resume, db, serve-site.

Library errors become one line on stderr and a non-zero exit code here, at the edge; ``-v`` shows the
traceback. Live progress goes to stderr, so ``--json`` leaves nothing but the result on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from leadline.cli_runs import db_app, runs_app
from leadline.config import Settings
from leadline.errors import LeadlineError

app = typer.Typer(
    name="leadline",
    help="Deep research with a two-axis budget: answers research questions with cited sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

T = TypeVar("T")


class _State:
    verbose = False


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
) -> None:
    _State.verbose = verbose


def _guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn leadline errors into one line on stderr and exit code 1."""
    try:
        return fn()
    except LeadlineError as exc:
        if _State.verbose:
            err.print_exception()
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        run_id = exc.run_data.get("run_id")
        if run_id:
            err.print(f"run {run_id} kept its record; continue it with: leadline resume {run_id}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


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
    model: Annotated[
        str | None, typer.Option(help="Packaged model name, .gguf path, or server model.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible server (vLLM, llama.cpp), e.g. http://127.0.0.1:8000/v1"),
    ] = None,
    corpus: Annotated[str | None, typer.Option(help="Local corpus: an index name or a path.")] = None,
    search: Annotated[
        str | None,
        typer.Option(
            help="local, searxng, tavily, brave, exa, duckduckgo, or a comma list (fallback chain)."
        ),
    ] = None,
    searxng_url: Annotated[str | None, typer.Option(help="SearxNG base URL (with --search searxng).")] = None,
    report: Annotated[bool, typer.Option("--report", help="Write a long-form cited report.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout only.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the report (or answer) as Markdown to this file.")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Database URL (default: SQLite in the data dir).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    controller: Annotated[
        str, typer.Option(help="fixed (spend the budget as given) or adaptive (the two-axis controller).")
    ] = "fixed",
    tuned: Annotated[
        Path | None,
        typer.Option(help="A tuned controller from `leadline tune --save` (implies --controller adaptive)."),
    ] = None,
) -> None:
    """Research a question and print the answer with its citations."""
    from leadline.api import Researcher
    from leadline.budgets.ledger import Budget

    def run() -> Any:
        settings = _settings(
            model=model,
            base_url=base_url,
            corpus=corpus,
            db_url=db,
            search=search or ("searxng" if searxng_url else None),
            searxng_url=searxng_url,
        )
        budget = Budget(tokens=budget_tokens, searches=budget_searches, seconds=budget_seconds)
        factory = _load_tuned(tuned).controller if tuned is not None else _controller(controller)
        with (
            Researcher(settings, controller=factory) as researcher,
            _Progress(not quiet) as progress,
        ):
            return researcher.research(
                question, budget=budget, mode="report" if report else "answer", progress=progress
            )

    result = _guard(run)
    _print_result(result, as_json=as_json, out_file=out_file)


def _controller(name: str) -> Any:
    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.controller import FixedController
    from leadline.errors import ConfigError

    factories = {"fixed": FixedController, "adaptive": AdaptiveController}
    if name not in factories:
        raise ConfigError(f"unknown controller {name!r}; use fixed or adaptive")
    return factories[name]


def _load_tuned(path: Path) -> Any:
    from leadline.budgets.tuned import TunedModel

    return TunedModel.load(path)


def _read_questions(path: Path) -> list[str]:
    from leadline.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"question file not found: {path}")
    questions = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                questions.append(str(json.loads(line)["question"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{lineno}: expected a JSON object with a 'question'") from exc
        else:
            questions.append(line.strip())
    if not questions:
        raise ConfigError(f"{path} holds no questions")
    return questions


@app.command()
def batch(
    questions_file: Annotated[
        Path, typer.Argument(help="Questions: one per line, or JSONL with 'question'.")
    ],
    out: Annotated[
        Path, typer.Option(help="Results as JSONL (appended; finished questions are skipped).")
    ] = Path("leadline-results.jsonl"),
    tokens_per_question: Annotated[int, typer.Option(help="Mean generated tokens per question.")] = 512,
    searches_per_question: Annotated[int, typer.Option(help="Mean searches per question.")] = 3,
    adaptive: Annotated[
        bool, typer.Option("--adaptive/--fixed", help="Plan the batch with the two-axis controller.")
    ] = True,
    concurrency: Annotated[int, typer.Option(help="Runs at once (useful against a vLLM server).")] = 1,
    report: Annotated[bool, typer.Option("--report", help="Write a report per question.")] = False,
    model: Annotated[str | None, typer.Option(help="Packaged model, .gguf path, or server model.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")] = None,
    corpus: Annotated[str | None, typer.Option(help="Local corpus: an index name or a path.")] = None,
    db: Annotated[str | None, typer.Option(help="Database URL.")] = None,
    tuned: Annotated[
        Path | None, typer.Option(help="A tuned controller from `leadline tune --save` (adaptive only).")
    ] = None,
) -> None:
    """Research many questions unattended under one total budget, one JSON line per result."""
    from leadline.api import Researcher
    from leadline.budgets.ledger import Budget

    def run() -> tuple[int, int]:
        from leadline.errors import ConfigError

        if tuned is not None and not adaptive:
            raise ConfigError("--tuned needs the adaptive controller; drop --fixed")
        model_file = _load_tuned(tuned) if tuned is not None else None
        questions = _read_questions(questions_file)
        finished = set()
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    finished.add(json.loads(line).get("question"))
        todo = [q for q in questions if " ".join(q.split()) not in finished]
        settings = _settings(model=model, base_url=base_url, corpus=corpus, db_url=db)
        per_question = Budget(tokens=tokens_per_question, searches=searches_per_question)
        failures = 0

        def on_result(i: int, outcome: Any) -> None:
            nonlocal failures
            if isinstance(outcome, LeadlineError):
                failures += 1
                err.print(f"[{i + 1}/{len(todo)}] [red]failed:[/] {outcome.message}", highlight=False)
                return
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(outcome.to_dict(), default=str) + "\n")
            s = outcome.spend
            err.print(
                f"[{i + 1}/{len(todo)}] {s.tokens} tokens, {s.searches} searches: {outcome.answer[:80]}",
                highlight=False,
            )

        err.print(f"{len(todo)} questions to run ({len(questions) - len(todo)} already in {out})")
        with Researcher(settings) as researcher:
            researcher.batch(
                todo,
                per_question=per_question,
                adaptive=adaptive,
                concurrency=concurrency,
                mode="report" if report else "answer",
                on_result=on_result,
                tuned=model_file,
            )
        return len(todo) - failures, failures

    done, failures = _guard(run)
    err.print(f"{done} answered, {failures} failed; results in {out}")
    if failures:
        raise typer.Exit(1)


@app.command()
def tune(
    questions_file: Annotated[
        Path, typer.Argument(help="JSONL with id, question, answers (the multihop format).")
    ],
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
    model: Annotated[str | None, typer.Option(help="Packaged model, .gguf path, or server model.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")] = None,
    corpus: Annotated[str | None, typer.Option(help="Local corpus: an index name or a path.")] = None,
    save: Annotated[
        Path | None,
        typer.Option(help="Fit a controller on the table's train rows and save it here (for --tuned)."),
    ] = None,
) -> None:
    """See what each extra search or token buys: run questions at a grid of budgets and score them.

    Prints mean quality and real spend per budget point; when the table holds train and dev rows, also
    compares uniform, adaptive and oracle allocation on it (curves fitted on train, scored on dev).
    With --save, fits a controller on the train rows for `ask --tuned` and `batch --tuned`.
    """
    import asyncio

    from leadline.api import Researcher
    from leadline.evals.datasets import load_questions
    from leadline.evals.outcomes import OutcomeTable
    from leadline.evals.sweep import parse_points, run_sweep

    def run() -> OutcomeTable:
        grid = parse_points(points)
        items = load_questions(questions_file)[:limit]
        settings = _settings(model=model, base_url=base_url, corpus=corpus)

        async def sweep() -> None:
            async with Researcher(settings) as researcher:
                await run_sweep(
                    researcher,
                    items,
                    grid,
                    out,
                    split=split,
                    on_row=lambda r: err.print(
                        f"{r.question_id} {r.tokens}x{r.searches}: f1 {r.f1:.2f}, "
                        f"spent {r.spent_tokens} tokens / {r.spent_searches} searches",
                        highlight=False,
                    ),
                )

        asyncio.run(sweep())
        return OutcomeTable.read_jsonl(out)

    table = _guard(run)
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

        out_console.print(_guard(lambda: evaluate_table(table)).describe())
    if save is not None:
        from leadline.evals.tuning import fit_tuned

        tuned_model = _guard(lambda: fit_tuned(table))
        _guard(lambda: tuned_model.save(save))
        scored = ", ".join(f"{k} {v:.3f}" for k, v in tuned_model.held_out.items())
        err.print(
            f"saved a tuned controller ({tuned_model.kind}; held-out train quality: {scored or 'n/a'})"
            f" to {save}; use it with --tuned {save}",
            highlight=False,
        )


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The id of an interrupted run.")],
    db: Annotated[str | None, typer.Option(help="Database URL.")] = None,
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
        saved = {k: v for k, v in record.settings.items() if v is not None}
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

    settings = _settings()
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


app.add_typer(runs_app, name="runs", help="Browse, export and clean up recorded runs.")
app.add_typer(db_app, name="db", help="Database operations (migrations).")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
