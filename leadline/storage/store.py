"""The durable run store on SQLite or PostgreSQL: what a run learned and spent survives any crash.

:class:`SqlRunStore` implements the loop's :class:`~leadline.storage.base.RunStore` and the fetcher's
:class:`~leadline.tools.base.PageStore` on one database. A step is written once per ``(run_id, key)``
with ``INSERT ... ON CONFLICT DO NOTHING``, and in the same transaction its ledger entry and its detail
row (LLM call or search); a second write of the same key, from a resume or a racing worker, changes
nothing and returns what was stored first. The ledger of a run is therefore exactly the sum of its
first-recorded steps, however often it was interrupted. Batches, jobs and outcome tables live here too
(``batches.py`` holds those methods, ``documents.py`` the content-addressed bodies).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, inspect, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from leadline.errors import ConfigError, RunNotFoundError
from leadline.storage.access import core_table
from leadline.storage.base import RunRecord, RunStatus, StepRecord
from leadline.storage.batches import BatchMethods, attach_statement
from leadline.storage.documents import DocumentMethods, sha256_hex
from leadline.storage.engine import make_engine
from leadline.storage.models import (
    Citation,
    Job,
    LedgerRow,
    LLMCall,
    Report,
    Run,
    SearchCall,
    Step,
    utc_now,
)
from leadline.storage.outcomes import OutcomeMethods
from leadline.storage.records import LedgerRecord, LedgerTotals, LLMCallRecord, SearchCallRecord
from leadline.storage.step_statement import Detail, step_statement

_CHECKPOINT_TABLES = {
    "sqlite": ("writes", "checkpoints"),
    "postgresql": ("checkpoint_writes", "checkpoint_blobs", "checkpoints"),
}
"""Tables of the official LangGraph savers, keyed by thread_id (= run_id), per dialect."""

_CHUNK = 500
"""Rows per ``IN (...)`` list, well under SQLite's bound-parameter limit."""


def _json_default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a step; give JSON-compatible data")


_FINISH_CITATIONS_SQL = """,
gone AS (DELETE FROM citations WHERE run_id IN (SELECT id FROM done) AND number > %(count)s),
cited AS (
    INSERT INTO citations (run_id, number, doc_id, title, url, data)
    SELECT done.id, c.number, c.doc_id, c.title, c.url, c.data::json
    FROM done, unnest(%(numbers)b::int[], %(doc_ids)b::text[], %(titles)b::text[], %(urls)b::text[],
                      %(data)b::text[]) AS c(number, doc_id, title, url, data)
    ON CONFLICT (run_id, number) DO UPDATE
    SET doc_id = EXCLUDED.doc_id, title = EXCLUDED.title, url = EXCLUDED.url, data = EXCLUDED.data
)"""
"""A finished run's citations, in :meth:`SqlRunStore._finish_in_one`'s statement after its ``done`` CTE."""

RUN_COLUMNS = ("id", "question", "status", "mode", "model", "budget", "settings", "spend", "created_at")
"""The columns a new run is created with (:meth:`SqlRunStore.create_run`)."""


def run_with_job_statement() -> Any:
    """PostgreSQL: a new run's ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` with the batch job
    ``job_id`` linked to it in the same statement (a data-modifying CTE that updates nothing when the
    run existed already). The run's parameters are its columns prefixed ``new_``: a parameter named like
    a column of the job would be added to the job's SET clause (SQLAlchemy's rule for UPDATE parameters).
    """
    runs = core_table(Run)
    values = select(*(bindparam(f"new_{c}", type_=runs.c[c].type) for c in RUN_COLUMNS))
    new_run = (
        pg_insert(runs)
        .from_select(list(RUN_COLUMNS), values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(runs.c.id)
    )
    created = new_run.cte("new_run")
    jobs = core_table(Job)
    attached = (
        update(jobs)
        .where(jobs.c.id == bindparam("job_id", type_=jobs.c.id.type))
        .values(run_id=created.c.id, updated_at=bindparam("now", type_=jobs.c.updated_at.type))
        .cte("attached")
    )
    return select(created.c.id).add_cte(attached)


def to_json(value: Any) -> Any:
    """``value`` as it reads back from the database, so a first run and a replay see the same data."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def _detail_params(
    step: StepRecord, request: dict[str, Any], response: dict[str, Any]
) -> tuple[bool, Detail, dict[str, Any]]:
    """What a step's ledger and detail rows add to its own columns: whether it has a ledger row (any
    step but an unspent note), which detail row it has, and their extra values (money; the model; the
    query, backend and results)."""
    spent = any((step.prompt_tokens, step.completion_tokens, step.searches, step.fetches))
    ledger = step.kind != "note" or spent
    extra: dict[str, Any] = {"money": float(response.get("money", 0.0) or 0.0)} if ledger else {}
    if step.kind == "llm":
        return ledger, "llm", extra | {"model": str(request.get("model") or response.get("model") or "")}
    if step.kind == "search":
        results = response.get("results")
        results = results if isinstance(results, list) else []
        return (
            ledger,
            "search",
            extra
            | {
                "query": str(request.get("query", "")),
                "backend": str(request.get("backend") or response.get("backend") or ""),
                "n_results": len(results),
                "results": results,
            },
        )
    return ledger, "none", extra


class SqlRunStore(DocumentMethods, BatchMethods, OutcomeMethods):
    """Runs, steps, sources, pages, ledger, batches and outcomes on one SQLAlchemy engine.

    Thread-safe: each call checks a connection out of the engine's pool and returns it. The schema is
    brought up to date on first use (``auto_upgrade``), or a :class:`SchemaVersionError` is raised for
    a database written by a newer leadline.
    """

    @classmethod
    def from_url(cls, url: str | URL, *, auto_upgrade: bool = True, **engine_options: Any) -> SqlRunStore:
        """A store on the database at ``url`` (SQLite or PostgreSQL), its schema upgraded unless told not
        to.
        """
        return cls(make_engine(url, **engine_options), auto_upgrade=auto_upgrade)

    def __enter__(self) -> SqlRunStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- runs ---------------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        question: str,
        mode: str,
        model: str,
        budget: dict[str, Any],
        settings: dict[str, Any],
        run_id: str | None = None,
        job_id: int | None = None,
    ) -> str:
        """Record a new run as ``running`` and return its id (``run_id`` or a fresh one); with ``job_id``,
        link that batch job to the run in the same transaction (:meth:`attach_run` without a second one).
        """
        run_id = run_id or uuid.uuid4().hex
        row = {
            "id": run_id,
            "question": question,
            "status": "running",
            "mode": mode,
            "model": model,
            "budget": to_json(budget),
            "settings": to_json(settings),
            "spend": {},
            "created_at": utc_now(),
        }
        if job_id is None:  # one statement (in autocommit on PostgreSQL)
            inserted = self._write_one("run", self._run_insert, row, scalar=True)
        elif self._dialect == "postgresql":  # one statement: the run, and the job linked to it
            params = {f"new_{k}": v for k, v in row.items()} | {"job_id": job_id, "now": utc_now()}
            inserted = self._write_one("run+job", run_with_job_statement, params, scalar=True)
        else:
            with self._write() as conn:
                inserted = self._execute_direct(conn, "run", self._run_insert, row, scalar=True)
                if inserted is not None:
                    self._execute_direct(
                        conn,
                        "attach",
                        attach_statement,
                        {"job_id": job_id, "run_id": run_id, "now": utc_now()},
                    )
        if inserted is None:
            raise ConfigError(f"a run with id {run_id!r} exists already")
        return run_id

    def _run_insert(self) -> Any:
        """A new run's ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (its columns: the parameters')."""
        runs = core_table(Run)
        return self._insert(runs).on_conflict_do_nothing(index_elements=["id"]).returning(runs.c.id)

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        answer: str | None = None,
        citations: list[dict[str, Any]] | None = None,
        report: str | None = None,
        spend: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended: its status, answer, citations, report, spend or error."""
        values: dict[str, Any] = {"status": status, "finished_at": utc_now()}
        if answer is not None:
            values["answer"] = answer
        if spend is not None:
            values["spend"] = to_json(spend)
        if error is not None:
            values["error"] = error
        if self._dialect == "postgresql" and report is None:
            self._finish_in_one(run_id, values, citations)
            return
        with self._write() as conn:
            if not self._update_by_id(conn, Run, "run_id_", run_id, values):
                raise RunNotFoundError(f"no run {run_id!r}")
            if citations is not None:
                self._execute_direct(
                    conn,
                    "citations:clear",
                    lambda: delete(core_table(Citation)).where(
                        core_table(Citation).c.run_id == bindparam("run_id")
                    ),
                    {"run_id": run_id},
                )
                rows = [_citation_row(run_id, i, c) for i, c in enumerate(citations, start=1)]
                if rows:
                    self._execute_direct(conn, "citations", lambda: self._insert(core_table(Citation)), rows)
            if report is not None:
                stmt = self._insert(Report).values(run_id=run_id, markdown=report, created_at=utc_now())
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["run_id"], set_={"markdown": report, "created_at": utc_now()}
                    )
                )

    def _finish_in_one(
        self, run_id: str, values: dict[str, Any], citations: list[dict[str, Any]] | None
    ) -> None:
        """:meth:`finish_run` without a report, on PostgreSQL: the run's end and its citations in one
        statement in autocommit (citations numbered as before are overwritten, the ones past the new
        count removed, so a run finished again reads back only its new citations)."""
        from leadline.storage.pg_arrays import Ints, Texts

        params: dict[str, Any] = {"run_id": run_id}
        sets = []
        for column, value in values.items():
            json_column = column == "spend"
            params[column] = json.dumps(value, ensure_ascii=False) if json_column else value
            sets.append(f"{column} = %({column})s" + ("::json" if json_column else ""))
        sql = f"WITH done AS (UPDATE runs SET {', '.join(sets)} WHERE id = %(run_id)s RETURNING id)"
        if citations is not None:
            rows = [_citation_row(run_id, i, c) for i, c in enumerate(citations, start=1)]
            params |= {
                "count": len(rows),
                "numbers": Ints(r["number"] for r in rows),
                "doc_ids": Texts(r["doc_id"] for r in rows),
                "titles": Texts(r["title"] for r in rows),
                "urls": Texts(r["url"] for r in rows),
                "data": Texts(json.dumps(r["data"], ensure_ascii=False) for r in rows),
            }
            sql += _FINISH_CITATIONS_SQL
        if not self._autocommit(sql + " SELECT count(*) FROM done", params, scalar=True):
            raise RunNotFoundError(f"no run {run_id!r}")

    def set_status(self, run_id: str, status: RunStatus) -> None:
        """Change a run's status only (``running`` again on resume, ``interrupted`` on a clean stop)."""
        with self._write() as conn:
            if not self._update_by_id(conn, Run, "run_id_", run_id, {"status": status}):
                raise RunNotFoundError(f"no run {run_id!r}")

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record; raises RunNotFoundError for an unknown id."""
        with self._read() as conn:
            run = conn.execute(select(Run).where(Run.id == run_id)).first()
            if run is None:
                raise RunNotFoundError(f"no run {run_id!r}")
            return self._run_records(conn, [run])[0]

    def list_runs(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunRecord]:
        """The newest runs first, optionally only those with ``status``."""
        stmt = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(Run.status == status)
        with self._read() as conn:
            return self._run_records(conn, list(conn.execute(stmt)))

    def _run_records(self, conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
        ids = [r.id for r in rows]
        citations: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        reports: dict[str, str] = {}
        for chunk in _chunks(ids):
            for c in conn.execute(
                select(Citation.run_id, Citation.data)
                .where(Citation.run_id.in_(chunk))
                .order_by(Citation.number)
            ):
                citations[c.run_id].append(c.data)
            for r in conn.execute(select(Report.run_id, Report.markdown).where(Report.run_id.in_(chunk))):
                reports[r.run_id] = r.markdown
        return [
            RunRecord(
                run_id=r.id,
                question=r.question,
                status=r.status,
                mode=r.mode,
                model=r.model,
                budget=r.budget,
                settings=r.settings,
                answer=r.answer,
                citations=citations[r.id],
                report=reports.get(r.id),
                spend=r.spend,
                error=r.error,
                created_at=r.created_at,
                finished_at=r.finished_at,
            )
            for r in rows
        ]

    def delete_run(self, run_id: str) -> None:
        """Remove a run, everything recorded under it and its checkpoints; RunNotFoundError if unknown."""
        with self._write() as conn:
            if not conn.execute(delete(Run).where(Run.id == run_id)).rowcount:
                raise RunNotFoundError(f"no run {run_id!r}")
            self._delete_checkpoints(conn, [run_id])

    # -- steps --------------------------------------------------------------------------------------
    def record_step(self, step: StepRecord) -> StepRecord:
        """Store a step once, with its ledger row and LLM or search detail in one transaction; a key
        recorded already returns the stored step unchanged.
        """
        request, response = to_json(step.request), to_json(step.response)
        values = {
            "run_id": step.run_id,
            "key": step.key,
            "kind": step.kind,
            "node": step.node,
            "request": request,
            "response": response,
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "searches": step.searches,
            "fetches": step.fetches,
            "seconds": step.seconds,
            "created_at": utc_now(),
        }
        ledger, detail, extra = _detail_params(step, request, response)
        try:
            if self._dialect == "postgresql":  # one statement: the step and its ledger and detail rows
                step_id = self._write_one(
                    f"step:{detail}:{ledger}",
                    lambda: step_statement(detail, ledger),
                    values | extra,
                    scalar=True,
                )
            else:
                with self._write() as conn:
                    stmt = self._prepared(
                        "step",
                        lambda: (
                            self._insert(core_table(Step))
                            .on_conflict_do_nothing(index_elements=["run_id", "key"])
                            .returning(core_table(Step).c.id)
                        ),
                    )
                    step_id = conn.execute(stmt, values).scalar()
                    if step_id is not None:
                        self._record_details(conn, step_id, values, ledger, detail, extra)
            if step_id is None:  # recorded before: the first record wins (and nothing was written)
                with self._read() as conn:
                    existing = conn.execute(
                        select(Step).where(Step.run_id == step.run_id, Step.key == step.key)
                    ).one()
                return _step_record(existing)
        except Exception as exc:
            if isinstance(exc.__cause__, IntegrityError) and not self._run_exists(step.run_id):
                raise RunNotFoundError(f"no run {step.run_id!r}") from exc
            raise
        # The caller's own record (not its JSON form): a loop that compares the returned response
        # with the one it sent, to learn whether it won a race, must see them equal.
        return replace(step, created_at=values["created_at"])

    def _record_details(
        self,
        conn: Connection,
        step_id: int,
        values: dict[str, Any],
        ledger: bool,
        detail: Detail,
        extra: dict[str, Any],
    ) -> None:
        """SQLite's ledger and detail rows of a new step (PostgreSQL writes them with the step)."""
        common = {"run_id": values["run_id"], "step_id": step_id, "created_at": values["created_at"]}
        if ledger:
            columns = ("kind", "node", "prompt_tokens", "completion_tokens", "searches", "fetches", "seconds")
            row = common | {c: values[c] for c in columns} | {"money": extra["money"]}
            conn.execute(self._prepared("ledger", lambda: self._insert(core_table(LedgerRow))), row)
        if detail == "none":
            return
        row = common | {"latency_s": values["seconds"]} | {k: v for k, v in extra.items() if k != "money"}
        if detail == "llm":
            row |= {
                "prompt_tokens": values["prompt_tokens"],
                "completion_tokens": values["completion_tokens"],
            }
            conn.execute(self._prepared("llm_call", lambda: self._insert(core_table(LLMCall))), row)
        else:
            conn.execute(self._prepared("search_call", lambda: self._insert(core_table(SearchCall))), row)

    def _run_exists(self, run_id: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(Run.id).where(Run.id == run_id)).first() is not None

    def get_step(self, run_id: str, key: str) -> StepRecord | None:
        """The step recorded under ``key`` in the run, or None."""
        with self._read() as conn:
            row = conn.execute(select(Step).where(Step.run_id == run_id, Step.key == key)).first()
        return _step_record(row) if row is not None else None

    def list_steps(self, run_id: str) -> list[StepRecord]:
        """The run's steps in the order they were recorded."""
        with self._read() as conn:
            rows = conn.execute(select(Step).where(Step.run_id == run_id).order_by(Step.id))
            return [_step_record(r) for r in rows]

    # -- ledger and details -------------------------------------------------------------------------
    def ledger_entries(self, run_id: str) -> list[LedgerRecord]:
        """The run's ledger rows in order, each with the key of the step that spent it."""
        stmt = (
            select(LedgerRow, Step.key)
            .join(Step, Step.id == LedgerRow.step_id)
            .where(LedgerRow.run_id == run_id)
            .order_by(LedgerRow.id)
        )
        with self._read() as conn:
            return [
                LedgerRecord(
                    run_id=r.run_id,
                    step_key=r.key,
                    kind=r.kind,
                    node=r.node,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    searches=r.searches,
                    fetches=r.fetches,
                    seconds=r.seconds,
                    money=r.money,
                )
                for r in conn.execute(stmt)
            ]

    def ledger_totals(self, run_id: str) -> LedgerTotals:
        """The run's spend summed over its ledger."""
        stmt = select(
            func.coalesce(func.sum(LedgerRow.prompt_tokens), 0),
            func.coalesce(func.sum(LedgerRow.completion_tokens), 0),
            func.coalesce(func.sum(LedgerRow.searches), 0),
            func.coalesce(func.sum(LedgerRow.fetches), 0),
            func.count(LedgerRow.id).filter(LedgerRow.kind == "llm"),
            func.coalesce(func.sum(LedgerRow.seconds), 0.0),
            func.coalesce(func.sum(LedgerRow.money), 0.0),
        ).where(LedgerRow.run_id == run_id)
        with self._read() as conn:
            row = conn.execute(stmt).one()
        return LedgerTotals(
            prompt_tokens=int(row[0]),
            completion_tokens=int(row[1]),
            searches=int(row[2]),
            fetches=int(row[3]),
            llm_calls=int(row[4]),
            seconds=float(row[5]),
            money=float(row[6]),
        )

    def llm_calls(self, run_id: str) -> list[LLMCallRecord]:
        """The run's LLM calls in order: model, tokens and latency of each."""
        stmt = (
            select(LLMCall, Step.key).join(Step, Step.id == LLMCall.step_id).where(LLMCall.run_id == run_id)
        )
        with self._read() as conn:
            return [
                LLMCallRecord(
                    run_id=r.run_id,
                    step_key=r.key,
                    model=r.model,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    latency_s=r.latency_s,
                )
                for r in conn.execute(stmt.order_by(LLMCall.id))
            ]

    def search_calls(self, run_id: str) -> list[SearchCallRecord]:
        """The run's searches in order: query, backend, results and latency of each."""
        stmt = select(SearchCall, Step.key).join(Step, Step.id == SearchCall.step_id)
        with self._read() as conn:
            return [
                SearchCallRecord(
                    run_id=r.run_id,
                    step_key=r.key,
                    query=r.query,
                    backend=r.backend,
                    n_results=r.n_results,
                    results=r.results,
                    latency_s=r.latency_s,
                )
                for r in conn.execute(stmt.where(SearchCall.run_id == run_id).order_by(SearchCall.id))
            ]

    # -- checkpoints --------------------------------------------------------------------------------
    def _checkpoint_tables(self, conn: Connection) -> list[str]:
        present = set(inspect(conn).get_table_names())
        return [t for t in _CHECKPOINT_TABLES.get(self._dialect, ()) if t in present]

    def _delete_checkpoints(self, conn: Connection, thread_ids: Sequence[str]) -> int:
        """Drop the LangGraph checkpoints of these runs; returns how many runs had some."""
        tables = self._checkpoint_tables(conn)
        if not tables or not thread_ids:
            return 0
        found = 0
        for chunk in _chunks(list(thread_ids)):
            # Table names come from _CHECKPOINT_TABLES, never from input.
            count = text("SELECT COUNT(DISTINCT thread_id) FROM checkpoints WHERE thread_id IN :ids")
            found += int(
                conn.execute(count.bindparams(bindparam("ids", expanding=True)), {"ids": chunk}).scalar_one()
            )
            for table in tables:
                drop = text(f"DELETE FROM {table} WHERE thread_id IN :ids")
                conn.execute(drop.bindparams(bindparam("ids", expanding=True)), {"ids": chunk})
        return found

    def gc_checkpoints(self, older_than_days: float) -> int:
        """Drop checkpoints of runs that finished (done or failed) more than ``older_than_days`` ago.

        The runs themselves, their steps, ledger and answers stay; only the graph state needed to
        resume goes (a finished run is never resumed). Returns the number of runs whose checkpoints
        were dropped.
        """
        if older_than_days < 0:
            raise ConfigError("older_than_days must be zero or more")
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        stmt = select(Run.id).where(Run.status.in_(("done", "failed")), Run.finished_at < cutoff)
        with self._write() as conn:
            ids = list(conn.execute(stmt).scalars())
            return self._delete_checkpoints(conn, ids)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _citation_row(run_id: str, number: int, citation: dict[str, Any]) -> dict[str, Any]:
    data = to_json(citation)
    return {
        "run_id": run_id,
        "number": number,
        "doc_id": str(data.get("doc_id", "")),
        "title": str(data.get("title", "")),
        "url": str(data.get("url", "")),
        "data": data,
    }


def _step_record(row: Any) -> StepRecord:
    return StepRecord(
        run_id=row.run_id,
        key=row.key,
        kind=row.kind,
        node=row.node,
        request=row.request,
        response=row.response,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        searches=row.searches,
        fetches=row.fetches,
        seconds=row.seconds,
        created_at=row.created_at,
    )


__all__ = ["SqlRunStore", "sha256_hex", "to_json"]
