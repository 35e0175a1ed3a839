"""What every ``leadline`` command shares: the one error edge and the options several commands take.

Library errors become one line on stderr and exit code 1 here, and only here (``-v`` shows the
traceback); an interrupt exits 130. The options that more than one command takes (``--model``,
``--base-url``, ``--corpus``, ``--db``, ``--search``, ``--searxng-url``) are declared once below, so
their names, help and environment variables cannot drift between commands. (``--db`` also reads
``LEADLINE_DB_URL``; the others fall back to their ``LEADLINE_*`` variables through
:meth:`Settings.from_env`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from leadline.config import Settings
from leadline.errors import LeadlineError

__all__ = [
    "BaseUrlOption",
    "CorpusOption",
    "DbOption",
    "ModelOption",
    "SearchOption",
    "SearxngUrlOption",
    "cli_errors",
    "guard",
    "is_verbose",
    "research_settings",
    "set_verbose",
]

T = TypeVar("T")

_err = Console(stderr=True)


class _EdgeState:
    """Whether ``-v`` was given (set once per invocation by the main callback)."""

    verbose = False


def set_verbose(verbose: bool) -> None:
    """Show tracebacks (``-v``) or one line per error (the default) at the edge."""
    _EdgeState.verbose = verbose


def is_verbose() -> bool:
    """Whether ``-v`` was given (``ask -v`` also shows the controller and each decision's reason)."""
    return _EdgeState.verbose


@contextmanager
def cli_errors(on_interrupt: str = "interrupted") -> Iterator[None]:
    """The CLI's error edge: a :class:`LeadlineError` becomes one line on stderr and exit code 1.

    A run that kept its record says how to continue it; Ctrl-C exits 130 without a traceback.
    """
    try:
        yield
    except LeadlineError as exc:
        if _EdgeState.verbose:
            _err.print_exception()
        message = " ".join(exc.message.split())  # one line, whatever a driver's message holds
        _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        run_id = exc.run_data.get("run_id")
        if run_id:
            _err.print(
                f"run {run_id} kept its record; continue it with: leadline resume {run_id}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        _err.print(on_interrupt, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def guard(fn: Callable[[], T], *, on_interrupt: str = "interrupted") -> T:
    """Run ``fn`` inside :func:`cli_errors` and return its result (``on_interrupt``: the Ctrl-C line)."""
    with cli_errors(on_interrupt):
        return fn()


ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Packaged model name, .gguf path, or server model."),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server (vLLM, llama.cpp), e.g. http://127.0.0.1:8000/v1; for a batch, a "
        "comma list spreads the runs over several servers.",
    ),
]
CorpusOption = Annotated[
    str | None,
    typer.Option("--corpus", help="Local corpus: an index name or a path."),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="LEADLINE_DB_URL",
        help="Database URL: sqlite:///... or postgresql+psycopg://... (default: SQLite in the data dir).",
    ),
]
SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        help="local, searxng, tavily, brave, exa, duckduckgo, or a comma list (fallback chain).",
    ),
]
SearchCostOption = Annotated[
    float | None,
    typer.Option(
        "--search-cost",
        help="What one search costs the controller, in generated tokens (λ): the price at which it "
        "trades searches against thinking. Default: measured on the engine in use (the wall time of a "
        "search at its decode rate); the packaged fitted controllers were fitted at 500.",
    ),
]
SearchLinksOption = Annotated[
    int | None,
    typer.Option(
        "--search-links",
        help="Passages each search of the local corpus brings besides its results because they link to "
        "them (a passage links to the passages whose titles it names); 0 turns it off. Default: "
        "$LEADLINE_SEARCH_LINKS or 2.",
    ),
]
SearxngUrlOption = Annotated[
    str | None,
    typer.Option("--searxng-url", help="SearxNG base URL (implies --search searxng)."),
]


def research_settings(
    *,
    model: str | None = None,
    base_url: str | None = None,
    corpus: str | None = None,
    db: str | None = None,
    search: str | None = None,
    searxng_url: str | None = None,
    search_links: int | None = None,
) -> Settings:
    """Settings from the shared research options over the environment (a SearxNG URL implies searxng)."""
    return Settings.from_env(
        model=model,
        base_url=base_url,
        corpus=corpus,
        db_url=db,
        search=search or ("searxng" if searxng_url else None),
        searxng_url=searxng_url,
        search_links=search_links,
    )
