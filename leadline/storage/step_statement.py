"""A recorded step as one statement on PostgreSQL: the step, its ledger row and its detail row together.

Recording a step is the store's hottest write (every LLM call, search and fetch of every run). Sent as
three INSERTs in a transaction it costs three round trips and three passes through SQLAlchemy and
psycopg, all under the interpreter lock that a batch worker's concurrent runs share. On PostgreSQL the
ledger and detail rows are data-modifying CTEs fed by the step's ``INSERT ... ON CONFLICT DO NOTHING
RETURNING id``: one statement, the same rows, and when the key was recorded before, no row at all (the
CTEs select from the step insert, which then returns nothing). SQLite has no data-modifying CTEs; it
keeps the three INSERTs (``SqlRunStore._record_details``).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Select, Table, bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from leadline.storage.access import core_table
from leadline.storage.models import LedgerRow, LLMCall, SearchCall, Step

Detail = Literal["llm", "search", "none"]

STEP_COLUMNS = (
    "run_id",
    "key",
    "kind",
    "node",
    "request",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "searches",
    "fetches",
    "seconds",
    "created_at",
)
"""The parameters every variant takes (the step row's columns)."""


def _param(table: Table, column: str, name: str | None = None) -> Any:
    return bindparam(name or column, type_=table.c[column].type)


def _from_step(table: Table, step_id: Any, columns: dict[str, str]) -> Any:
    """``INSERT INTO table (step_id, columns...) SELECT new_step.id, :params...`` as a CTE."""
    names = ["step_id", *columns]
    values = [step_id, *(_param(table, col, param) for col, param in columns.items())]
    return insert(table).from_select(names, select(*values)).cte(f"new_{table.name}")


def step_statement(detail: Detail, ledger: bool) -> Select[Any]:
    """The one statement that records a step with its ledger row (when it spent something or is not a
    note) and its detail row (an LLM call or a search); it returns the new step's id, or no row when the
    key was recorded before."""
    steps = core_table(Step)
    new_step = (
        pg_insert(steps)
        .values({c: _param(steps, c) for c in STEP_COLUMNS})
        .on_conflict_do_nothing(index_elements=["run_id", "key"])
        .returning(steps.c.id)
        .cte("new_step")
    )
    step_id = new_step.c.id
    parts = []
    if ledger:
        table = core_table(LedgerRow)
        shared = ("run_id", "kind", "node", "prompt_tokens", "completion_tokens", "searches", "fetches")
        columns = {c: c for c in shared} | {
            "seconds": "seconds",
            "money": "money",
            "created_at": "created_at",
        }
        parts.append(_from_step(table, step_id, columns))
    if detail == "llm":
        table = core_table(LLMCall)
        columns = {c: c for c in ("run_id", "model", "prompt_tokens", "completion_tokens", "created_at")}
        parts.append(_from_step(table, step_id, columns | {"latency_s": "seconds"}))
    elif detail == "search":
        table = core_table(SearchCall)
        columns = {c: c for c in ("run_id", "query", "backend", "n_results", "results", "created_at")}
        parts.append(_from_step(table, step_id, columns | {"latency_s": "seconds"}))
    return select(step_id).select_from(new_step).add_cte(*parts)


__all__ = ["STEP_COLUMNS", "Detail", "step_statement"]
