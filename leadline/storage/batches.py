"""Batches and their jobs: the store methods a batch runner and its workers need.

A batch is a set of jobs (one per question); workers in any number of processes claim pending jobs
atomically (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so no question is
run twice. A claim may carry a lease (``lease_until``) that its worker renews with :meth:`heartbeat`; a
job whose lease has passed belongs to a dead worker and the next claim takes it over. Jobs left
``running`` can also be put back to ``pending`` with :meth:`requeue_jobs`.

The batch pool lives in the batch row (``pool_tokens``, ``pool_searches``). A claim with
``draw_from_pool`` takes the job's grant out of it in the claim's transaction, and :meth:`complete_job`
returns what the run did not spend in the completion's transaction, so the pool plus the grants held
plus the spend of finished jobs always equals the batch total: a batch never spends more than it has,
however many workers on however many machines share it.

Outcome rows (what sweeps produce) live in :mod:`leadline.storage.outcomes`.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from leadline.errors import ConfigError
from leadline.storage.access import StoreAccess
from leadline.storage.models import Batch, Job, LedgerRow, utc_now
from leadline.storage.records import (
    BatchProgress,
    BatchRecord,
    JobRecord,
    JobSpec,
    JobStatus,
)


class BatchMethods(StoreAccess):
    """Mixed into :class:`~leadline.storage.store.SqlRunStore`: batches, jobs and outcome rows."""

    # -- batches ------------------------------------------------------------------------------------
    def create_batch(
        self,
        *,
        name: str = "",
        budget: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        batch_id: str | None = None,
        pool_tokens: int = 0,
        pool_searches: int = 0,
    ) -> str:
        """A new batch; ``pool_*`` is the budget its jobs draw their grants from (see the module doc)."""
        batch_id = batch_id or uuid.uuid4().hex
        with self._write() as conn:
            inserted = conn.execute(
                self._insert(Batch)
                .values(
                    id=batch_id,
                    name=name,
                    status="running",
                    budget=budget or {},
                    settings=settings or {},
                    created_at=utc_now(),
                    pool_tokens=pool_tokens,
                    pool_searches=pool_searches,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(Batch.id)
            ).scalar()
        if inserted is None:
            raise ConfigError(f"a batch with id {batch_id!r} exists already")
        return batch_id

    def get_batch(self, batch_id: str) -> BatchRecord:
        """The batch's record; a ConfigError for an unknown id."""
        with self._read() as conn:
            row = conn.execute(select(Batch).where(Batch.id == batch_id)).first()
        if row is None:
            raise ConfigError(f"no batch {batch_id!r}")
        return BatchRecord(
            batch_id=row.id,
            name=row.name,
            status=row.status,
            budget=row.budget,
            settings=row.settings,
            created_at=row.created_at,
            finished_at=row.finished_at,
            pool_tokens=row.pool_tokens,
            pool_searches=row.pool_searches,
        )

    def finish_batch(self, batch_id: str, *, status: str = "done") -> None:
        """Mark a batch finished with ``status``."""
        with self._write() as conn:
            stmt = update(Batch).where(Batch.id == batch_id).values(status=status, finished_at=utc_now())
            if not conn.execute(stmt).rowcount:
                raise ConfigError(f"no batch {batch_id!r}")

    def set_batch_status(self, batch_id: str, status: str) -> None:
        """Set a batch's status (``running`` again when a rerun continues it)."""
        with self._write() as conn:
            values: dict[str, Any] = {"status": status}
            if status == "running":
                values["finished_at"] = None
            if not conn.execute(update(Batch).where(Batch.id == batch_id).values(**values)).rowcount:
                raise ConfigError(f"no batch {batch_id!r}")

    def grow_batch(self, batch_id: str, *, tokens: int, searches: int) -> None:
        """Add to the batch's total and its pool (questions added to a batch bring their shares)."""
        with self._write() as conn:
            row = conn.execute(select(Batch.budget).where(Batch.id == batch_id).with_for_update()).first()
            if row is None:
                raise ConfigError(f"no batch {batch_id!r}")
            budget = dict(row.budget)
            budget["total_tokens"] = int(budget.get("total_tokens", 0)) + tokens
            budget["total_searches"] = int(budget.get("total_searches", 0)) + searches
            conn.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(
                    budget=budget,
                    pool_tokens=Batch.pool_tokens + tokens,
                    pool_searches=Batch.pool_searches + searches,
                )
            )

    # -- jobs ---------------------------------------------------------------------------------------
    def add_jobs(self, batch_id: str, questions: Iterable[tuple[str, str]]) -> int:
        """Queue ``(question_id, question)`` pairs; a question already in the batch is skipped."""
        rows = [
            {
                "batch_id": batch_id,
                "question_id": qid,
                "question": q,
                "created_at": utc_now(),
                "updated_at": utc_now(),
            }
            for qid, q in questions
        ]
        if not rows:
            return 0
        with self._write() as conn:
            stmt = (
                self._insert(Job)
                .on_conflict_do_nothing(index_elements=["batch_id", "question_id"])
                .returning(Job.id)
            )
            return len(conn.execute(stmt, rows).all())

    def queue_jobs(self, batch_id: str, specs: Iterable[JobSpec]) -> int:
        """Queue questions with their planned shares; a question id already in the batch is skipped."""
        now = utc_now()
        rows = [
            {
                "batch_id": batch_id,
                "question_id": j.question_id,
                "question": j.question,
                "share_tokens": j.share_tokens,
                "share_searches": j.share_searches,
                "extra": dict(j.extra),
                "created_at": now,
                "updated_at": now,
            }
            for j in specs
        ]
        if not rows:
            return 0
        with self._write() as conn:
            stmt = (
                self._insert(Job)
                .on_conflict_do_nothing(index_elements=["batch_id", "question_id"])
                .returning(Job.id)
            )
            return len(conn.execute(stmt, rows).all())

    def claim_job(
        self,
        batch_id: str,
        *,
        worker: str = "",
        lease_s: float | None = None,
        draw_from_pool: bool = False,
        headroom: float = 1.0,
        min_tokens: int = 1,
    ) -> JobRecord | None:
        """Take the oldest claimable job of the batch for ``worker``; None when there is none.

        Claimable: pending, or (with ``lease_s``) running under a lease that has passed. With
        ``lease_s`` the claim holds a lease of that many seconds. With ``draw_from_pool`` a job that
        has no grant yet draws one from the batch pool: its share times ``headroom``, less when the pool
        must keep the shares of the other jobs not yet started, never more than the pool holds. A job
        the pool cannot fund (under ``min_tokens`` tokens or no search) stays pending and None is
        returned; jobs with a grant are claimed first.
        """
        now = utc_now()
        lease_until = None if lease_s is None else now + timedelta(seconds=lease_s)
        with self._write() as conn:
            pool: Any = None
            if draw_from_pool:  # the pool, locked, and the shares of the jobs still waiting for a grant
                pool = self._execute_direct(
                    conn, "claim:pool", _pool_statement, {"batch_id": batch_id}, row=True
                )
                if pool is None:
                    raise ConfigError(f"no batch {batch_id!r}")
            expired = lease_s is not None
            row = self._execute_direct(
                conn,
                f"claim:pick:{expired}",
                lambda: _pick_statement(expired),
                {"batch_id": batch_id, "now": now},
                row=True,
            )
            if row is None:
                return None
            params: dict[str, Any] = {
                "job_id": row.id,
                "worker": worker,
                "now": now,
                "lease_until": lease_until,
            }
            grant = pool is not None and row.grant_tokens is None
            if grant:
                waiting = row.status == "pending"  # then its own share is in the pool's waiting sums
                others_t = int(pool.waiting_tokens) - (row.share_tokens if waiting else 0)
                others_s = int(pool.waiting_searches) - (row.share_searches if waiting else 0)
                tokens = grant_amount(row.share_tokens, headroom, int(pool.pool_tokens), others_t)
                searches = grant_amount(row.share_searches, headroom, int(pool.pool_searches), others_s)
                if tokens < max(1, min_tokens) or searches < 1:
                    return None
                self._execute_direct(
                    conn,
                    "claim:draw",
                    _draw_statement,
                    {"batch_id": batch_id, "tokens": tokens, "searches": searches},
                )
                params |= {"grant_tokens": tokens, "grant_searches": searches}
            taken = self._execute_direct(
                conn, f"claim:take:{grant}", lambda: _take_statement(grant), params, row=True
            )
            assert taken is not None, "the job picked and locked above is updated"
            return _job_record(taken)

    def heartbeat(self, batch_id: str, *, worker: str, lease_s: float) -> int:
        """Renew the leases of ``worker``'s running jobs; returns how many it still holds."""
        with self._write() as conn:
            stmt = (
                update(Job)
                .where(Job.batch_id == batch_id, Job.worker == worker, Job.status == "running")
                .values(lease_until=utc_now() + timedelta(seconds=lease_s))
            )
            return int(conn.execute(stmt).rowcount)

    def attach_run(self, job_id: int, run_id: str) -> None:
        """Link a job to the run doing it, as soon as that run exists (progress and spend see it)."""
        with self._write() as conn:
            self._execute_direct(
                conn, "attach", attach_statement, {"job_id": job_id, "run_id": run_id, "now": utc_now()}
            )

    def complete_job(
        self,
        job_id: int,
        *,
        worker: str,
        status: JobStatus,
        run_id: str | None = None,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        spent_tokens: int = 0,
        spent_searches: int = 0,
        keep_grant: bool = False,
        spent_from_run: bool = False,
    ) -> bool:
        """Finish ``worker``'s job as done or failed and return its unspent grant to the batch pool.

        ``keep_grant`` (a failed run that a retry will resume under the same caps) keeps the grant with
        the job instead. A failed job that returns its grant forgets it, so a retry draws a new one.
        ``spent_from_run`` takes what was spent from ``run_id``'s ledger, read in the same statement
        that locks the job, instead of ``spent_tokens``/``spent_searches``. One transaction; False (and
        nothing changed) when the job is no longer this worker's — its lease passed and another worker
        took it over.
        """
        values: dict[str, Any] = {
            "status": status,
            "updated_at": utc_now(),
            "error": error,
            "result": result,
            "lease_until": None,
        }
        if run_id is not None:
            values["run_id"] = run_id
        if spent_from_run and run_id is None:
            raise ValueError("spent_from_run needs the run_id")
        if self._dialect == "postgresql":
            params = values | {
                "job_id": job_id,
                "worker": worker,
                "run_id": run_id,
                "result": None if result is None else json.dumps(result, ensure_ascii=False),
                "spent_tokens": spent_tokens,
                "spent_searches": spent_searches,
            }
            sql = _complete_sql(
                set_run=run_id is not None,
                forget_grant=status == "failed" and not keep_grant,
                refund=not keep_grant,
                spent_from_run=spent_from_run,
            )
            return bool(self._autocommit(sql, params, scalar=True))
        with self._write() as conn:
            row = conn.execute(
                self._prepared("complete:lock", _complete_lock_statement),
                {"job_id": job_id, "worker": worker, "run_id": run_id or ""},
            ).first()
            if row is None:
                return False
            if spent_from_run:
                spent_tokens, spent_searches = int(row.run_tokens), int(row.run_searches)
            if keep_grant:
                self._update_by_id(conn, Job, "job_id_", job_id, values)
                return True
            if status == "failed":
                values |= {"grant_tokens": None, "grant_searches": None}
            self._update_by_id(conn, Job, "job_id_", job_id, values)
            refund_t = max(0, (row.grant_tokens or 0) - spent_tokens)
            refund_s = max(0, (row.grant_searches or 0) - spent_searches)
            if refund_t or refund_s:
                self._execute_direct(
                    conn,
                    "complete:refund",
                    _refund_statement,
                    {"batch_id": row.batch_id, "tokens": refund_t, "searches": refund_s},
                )
            return True

    def release_job(self, job_id: int, *, worker: str) -> bool:
        """Give a job back unfinished (a clean stop): pending again, its grant and run kept for whoever
        claims it next, who resumes the run from its checkpoint."""
        with self._write() as conn:
            stmt = (
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(status="pending", lease_until=None, updated_at=utc_now())
            )
            return bool(conn.execute(stmt).rowcount)

    def fail_unfunded(self, batch_id: str, *, error: str) -> int:
        """Mark the pending jobs that never drew a grant failed with ``error`` (the pool is spent)."""
        with self._write() as conn:
            stmt = (
                update(Job)
                .where(Job.batch_id == batch_id, Job.status == "pending", Job.grant_tokens.is_(None))
                .values(status="failed", error=error, updated_at=utc_now())
            )
            return int(conn.execute(stmt).rowcount)

    def batch_progress(self, batch_id: str) -> BatchProgress:
        """Jobs by status, the pool, the batch total and the spend recorded in the ledger of its runs."""
        record = self.get_batch(batch_id)
        now = utc_now()
        with self._read() as conn:
            counts = dict(
                conn.execute(
                    select(Job.status, func.count(Job.id))
                    .where(Job.batch_id == batch_id)
                    .group_by(Job.status)
                ).all()
            )
            spent = conn.execute(
                select(
                    func.coalesce(func.sum(LedgerRow.completion_tokens), 0),
                    func.coalesce(func.sum(LedgerRow.searches), 0),
                ).where(LedgerRow.run_id.in_(select(Job.run_id).where(Job.batch_id == batch_id)))
            ).one()
            workers = conn.execute(
                select(Job.worker)
                .where(
                    Job.batch_id == batch_id,
                    Job.status == "running",
                    or_(Job.lease_until.is_(None), Job.lease_until >= now),
                )
                .distinct()
            ).scalars()
            worker_names = tuple(sorted(w for w in workers if w))
        total = record.budget
        return BatchProgress(
            batch_id=batch_id,
            status=record.status,
            pending=int(counts.get("pending", 0)),
            running=int(counts.get("running", 0)),
            done=int(counts.get("done", 0)),
            failed=int(counts.get("failed", 0)),
            pool_tokens=record.pool_tokens,
            pool_searches=record.pool_searches,
            total_tokens=int(total.get("total_tokens", 0)),
            total_searches=int(total.get("total_searches", 0)),
            spent_tokens=int(spent[0]),
            spent_searches=int(spent[1]),
            workers=worker_names,
        )

    def finish_job(
        self, job_id: int, *, status: JobStatus = "done", run_id: str | None = None, error: str | None = None
    ) -> None:
        """Record how a job ended, with the run that answered it."""
        values: dict[str, Any] = {"status": status, "updated_at": utc_now(), "error": error}
        if run_id is not None:
            values["run_id"] = run_id
        with self._write() as conn:
            if not conn.execute(update(Job).where(Job.id == job_id).values(**values)).rowcount:
                raise ConfigError(f"no job {job_id}")

    def requeue_jobs(self, batch_id: str, *, statuses: Sequence[JobStatus] = ("running",)) -> int:
        """Put jobs a dead worker left ``running`` (or, asked, failed ones) back to ``pending``."""
        with self._write() as conn:
            stmt = (
                update(Job)
                .where(Job.batch_id == batch_id, Job.status.in_(list(statuses)))
                .values(status="pending", lease_until=None, updated_at=utc_now())
            )
            return int(conn.execute(stmt).rowcount)

    def list_jobs(self, batch_id: str, *, status: JobStatus | None = None) -> list[JobRecord]:
        """The batch's jobs in order, optionally only those with ``status``."""
        stmt = select(Job).where(Job.batch_id == batch_id).order_by(Job.id)
        if status is not None:
            stmt = stmt.where(Job.status == status)
        with self._read() as conn:
            return [_job_record(r) for r in conn.execute(stmt)]


def grant_amount(share: int, headroom: float, pool: int, reserved: int) -> int:
    """A job's grant on one axis: its share times headroom, cut to keep ``reserved`` for the jobs not yet
    started, but never below its share while the pool holds it, and never above the pool."""
    want = max(share, math.ceil(share * headroom))
    return max(0, min(pool, max(share, min(want, pool - reserved))))


def _pool_statement() -> Any:
    """The batch's pool, locked for the claim, with the summed shares of its jobs waiting for a grant."""
    waiting = and_(Job.batch_id == Batch.id, Job.status == "pending", Job.grant_tokens.is_(None))
    return (
        select(
            Batch.pool_tokens,
            Batch.pool_searches,
            select(func.coalesce(func.sum(Job.share_tokens), 0))
            .where(waiting)
            .scalar_subquery()
            .label("waiting_tokens"),
            select(func.coalesce(func.sum(Job.share_searches), 0))
            .where(waiting)
            .scalar_subquery()
            .label("waiting_searches"),
        )
        .where(Batch.id == bindparam("batch_id"))
        .with_for_update(of=Batch)
    )


def _pick_statement(expired: bool) -> Any:
    """The oldest claimable job (those with a grant first), locked and skipped by other claimers:
    pending, or with ``expired`` also running under a lease that has passed."""
    claimable: Any = Job.status == "pending"
    if expired:
        lapsed = or_(Job.lease_until.is_(None), Job.lease_until < bindparam("now"))
        claimable = or_(claimable, and_(Job.status == "running", lapsed))
    return (
        select(Job.id, Job.status, Job.grant_tokens, Job.share_tokens, Job.share_searches)
        .where(Job.batch_id == bindparam("batch_id"), claimable)
        .order_by(Job.grant_tokens.is_(None), Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _draw_statement() -> Any:
    return (
        update(Batch)
        .where(Batch.id == bindparam("batch_id"))
        .values(
            pool_tokens=Batch.pool_tokens - bindparam("tokens"),
            pool_searches=Batch.pool_searches - bindparam("searches"),
        )
    )


def _take_statement(grant: bool) -> Any:
    """The claim itself, returning the job as it is now (with its new grant when ``grant``)."""
    values: dict[str, Any] = {
        "status": "running",
        "worker": bindparam("worker"),
        "attempts": Job.attempts + 1,
        "updated_at": bindparam("now"),
        "lease_until": bindparam("lease_until"),
    }
    if grant:
        values |= {"grant_tokens": bindparam("grant_tokens"), "grant_searches": bindparam("grant_searches")}
    return update(Job).where(Job.id == bindparam("job_id")).values(**values).returning(*Job.__table__.c)


def attach_statement() -> Any:
    """Link a job to its run (``job_id``, ``run_id``, ``now``); also sent in the transaction that creates
    the run."""
    return (
        update(Job)
        .where(Job.id == bindparam("job_id"))
        .values(run_id=bindparam("run_id"), updated_at=bindparam("now"))
    )


def _refund_statement() -> Any:
    """A job's unspent grant back into its batch's pool (``batch_id``, ``tokens``, ``searches``)."""
    return (
        update(Batch)
        .where(Batch.id == bindparam("batch_id"))
        .values(
            pool_tokens=Batch.pool_tokens + bindparam("tokens"),
            pool_searches=Batch.pool_searches + bindparam("searches"),
        )
    )


@functools.cache
def _complete_sql(*, set_run: bool, forget_grant: bool, refund: bool, spent_from_run: bool) -> str:
    """:meth:`BatchMethods.complete_job` as one statement on PostgreSQL (in autocommit): the worker's
    running job locked, updated, and its unspent grant returned to the pool; the job count (0 or 1)."""
    sets = [
        "status = %(status)s",
        "updated_at = %(updated_at)s",
        "error = %(error)s",
        "result = %(result)s::json",
        "lease_until = NULL",
    ]
    if set_run:
        sets.append("run_id = %(run_id)s")
    if forget_grant:
        sets += ["grant_tokens = NULL", "grant_searches = NULL"]
    spent = (
        "(SELECT coalesce(sum(completion_tokens), 0) AS tokens, coalesce(sum(searches), 0) AS searches"
        " FROM ledger_entries WHERE run_id = %(run_id)s)"
        if spent_from_run
        else "(SELECT %(spent_tokens)s::bigint AS tokens, %(spent_searches)s::bigint AS searches)"
    )
    sql = f"""WITH job AS (
    SELECT id, batch_id, grant_tokens, grant_searches FROM jobs
    WHERE id = %(job_id)s AND worker = %(worker)s AND status = 'running' FOR UPDATE
),
done AS (UPDATE jobs SET {", ".join(sets)} FROM job WHERE jobs.id = job.id)"""
    if refund:
        sql += f""",
spent AS {spent},
refund AS (
    UPDATE batches
    SET pool_tokens = pool_tokens + greatest(0, coalesce(job.grant_tokens, 0) - spent.tokens),
        pool_searches = pool_searches + greatest(0, coalesce(job.grant_searches, 0) - spent.searches)
    FROM job, spent
    WHERE batches.id = job.batch_id
      AND (coalesce(job.grant_tokens, 0) > spent.tokens OR coalesce(job.grant_searches, 0) > spent.searches)
)"""
    return sql + "\nSELECT count(*) FROM job"


def _complete_lock_statement() -> Any:
    """The worker's running job, locked, with what its run's ledger says the run spent."""
    on_run = LedgerRow.run_id == bindparam("run_id")
    tokens = select(func.coalesce(func.sum(LedgerRow.completion_tokens), 0)).where(on_run)
    searches = select(func.coalesce(func.sum(LedgerRow.searches), 0)).where(on_run)
    return (
        select(
            Job.batch_id,
            Job.grant_tokens,
            Job.grant_searches,
            tokens.scalar_subquery().label("run_tokens"),
            searches.scalar_subquery().label("run_searches"),
        )
        .where(Job.id == bindparam("job_id"), Job.worker == bindparam("worker"), Job.status == "running")
        .with_for_update(of=Job)
    )


def _job_record(row: Any) -> JobRecord:
    return JobRecord(
        job_id=row.id,
        batch_id=row.batch_id,
        question_id=row.question_id,
        question=row.question,
        status=row.status,
        run_id=row.run_id,
        attempts=row.attempts,
        worker=row.worker,
        error=row.error,
        share_tokens=row.share_tokens,
        share_searches=row.share_searches,
        grant_tokens=row.grant_tokens,
        grant_searches=row.grant_searches,
        lease_until=row.lease_until,
        extra=dict(row.extra or {}),
        result=row.result,
    )


__all__ = ["BatchMethods", "grant_amount"]
