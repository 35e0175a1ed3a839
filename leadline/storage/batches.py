"""Batches, their jobs and outcome tables: the store methods a batch runner and a sweep need.

A batch is a set of jobs (one per question); workers in any number of processes claim pending jobs
atomically (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so no question is
run twice. Jobs left ``running`` by a killed worker go back to ``pending`` with :meth:`requeue_jobs`.
Outcome rows are what sweeps produce and the budget controller is fitted on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from leadline.errors import ConfigError
from leadline.storage.access import StoreAccess
from leadline.storage.models import Batch, Job, OutcomeRow, utc_now
from leadline.storage.records import BatchRecord, JobRecord, JobStatus, OutcomeRecord


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
    ) -> str:
        """Record a new batch and return its id."""
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
        )

    def finish_batch(self, batch_id: str, *, status: str = "done") -> None:
        """Mark a batch finished with ``status``."""
        with self._write() as conn:
            stmt = update(Batch).where(Batch.id == batch_id).values(status=status, finished_at=utc_now())
            if not conn.execute(stmt).rowcount:
                raise ConfigError(f"no batch {batch_id!r}")

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

    def claim_job(self, batch_id: str, *, worker: str = "") -> JobRecord | None:
        """Take the oldest pending job of the batch for ``worker``; None when none is left."""
        with self._write() as conn:
            pending = (
                select(Job.id)
                .where(Job.batch_id == batch_id, Job.status == "pending")
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job_id = conn.execute(pending).scalar()
            if job_id is None:
                return None
            conn.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status="running", worker=worker, attempts=Job.attempts + 1, updated_at=utc_now())
            )
            return _job_record(conn.execute(select(Job).where(Job.id == job_id)).one())

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

    def requeue_jobs(self, batch_id: str) -> int:
        """Put jobs a dead worker left ``running`` back to ``pending``; returns how many."""
        with self._write() as conn:
            stmt = (
                update(Job)
                .where(Job.batch_id == batch_id, Job.status == "running")
                .values(status="pending", updated_at=utc_now())
            )
            return int(conn.execute(stmt).rowcount)

    def list_jobs(self, batch_id: str, *, status: JobStatus | None = None) -> list[JobRecord]:
        """The batch's jobs in order, optionally only those with ``status``."""
        stmt = select(Job).where(Job.batch_id == batch_id).order_by(Job.id)
        if status is not None:
            stmt = stmt.where(Job.status == status)
        with self._read() as conn:
            return [_job_record(r) for r in conn.execute(stmt)]

    # -- outcome tables -----------------------------------------------------------------------------
    def add_outcome_rows(self, rows: Iterable[OutcomeRecord]) -> int:
        """Store outcome rows; returns how many."""
        values = [_outcome_values(r) for r in rows]
        if not values:
            return 0
        with self._write() as conn:
            conn.execute(self._insert(OutcomeRow), values)
        return len(values)

    def outcome_rows(self, *, batch_id: str | None = None) -> list[OutcomeRecord]:
        """The stored outcome rows in order, optionally of one batch only."""
        stmt = select(OutcomeRow).order_by(OutcomeRow.id)
        if batch_id is not None:
            stmt = stmt.where(OutcomeRow.batch_id == batch_id)
        with self._read() as conn:
            return [
                OutcomeRecord(
                    question_id=r.question_id,
                    tokens=r.budget_tokens,
                    searches=r.budget_searches,
                    shape=r.shape,
                    question=r.question,
                    answer=r.answer,
                    em=r.score_em,
                    f1=r.score_f1,
                    recall=r.score_recall,
                    spent_prompt_tokens=r.spent_prompt_tokens,
                    spent_tokens=r.spent_tokens,
                    spent_searches=r.spent_searches,
                    spent_fetches=r.spent_fetches,
                    spent_seconds=r.spent_seconds,
                    difficulty=r.difficulty,
                    batch_id=r.batch_id,
                    run_id=r.run_id,
                    **_split_and_features(r.extra),
                )
                for r in conn.execute(stmt)
            ]


def _outcome_values(r: OutcomeRecord) -> dict[str, Any]:
    return {
        "batch_id": r.batch_id,
        "run_id": r.run_id,
        "question_id": r.question_id,
        "question": r.question,
        "budget_tokens": r.tokens,
        "budget_searches": r.searches,
        "shape": r.shape,
        "answer": r.answer,
        "score_em": r.em,
        "score_f1": r.f1,
        "score_recall": r.recall,
        "spent_prompt_tokens": r.spent_prompt_tokens,
        "spent_tokens": r.spent_tokens,
        "spent_searches": r.spent_searches,
        "spent_fetches": r.spent_fetches,
        "spent_seconds": r.spent_seconds,
        "difficulty": r.difficulty,
        "extra": _extra_with_split_and_features(r),
        "created_at": utc_now(),
    }


# ``outcome_rows`` has no split or features columns: they ride in ``extra`` under these keys.
_SPLIT_KEY, _FEATURES_KEY = "_split", "_features"


def _extra_with_split_and_features(r: OutcomeRecord) -> dict[str, Any]:
    extra = dict(r.extra)
    if r.split != "dev":
        extra[_SPLIT_KEY] = r.split
    if r.features:
        extra[_FEATURES_KEY] = dict(r.features)
    return extra


def _split_and_features(stored: dict[str, Any]) -> dict[str, Any]:
    extra = dict(stored or {})
    split = str(extra.pop(_SPLIT_KEY, "dev"))
    features = {str(k): float(v) for k, v in dict(extra.pop(_FEATURES_KEY, {})).items()}
    return {"split": split, "features": features, "extra": extra}


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
    )


__all__ = ["BatchMethods"]
