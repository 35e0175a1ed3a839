"""The run database as SQLAlchemy 2.0 typed models: one class per table.

These classes are the schema's source of truth for code; the Alembic migrations under
``storage/migrations`` are its source of truth for databases, and a test keeps the two equal. Every
table that belongs to a run cascades on the run's deletion, so ``delete_run`` leaves nothing behind.
Page and source bodies live once in ``documents``, addressed by their sha256.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always reads back timezone-aware in UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store times in UTC; naive values are taken as UTC."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read times back timezone-aware in UTC (SQLite forgets the zone)."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    """The declarative base: timezone-aware datetimes and JSON columns for dicts."""

    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        str: Text(),
    }


class Run(Base):
    """A research run: question, status, budget, settings, answer, spend and error."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str]
    status: Mapped[str] = mapped_column(String(16), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="answer")
    model: Mapped[str] = mapped_column(default="")
    budget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answer: Mapped[str | None]
    spend: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    finished_at: Mapped[datetime | None]


class Step(Base):
    """One recorded side effect; ``(run_id, key)`` is what makes a resume replay instead of spend."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_steps_run_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    searches: Mapped[int] = mapped_column(default=0)
    fetches: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LLMCall(Base):
    """Detail of an ``llm`` step, for browsing and cost analysis (derived when the step is recorded)."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), unique=True)
    model: Mapped[str] = mapped_column(default="")
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class SearchCall(Base):
    """Detail of a ``search`` step: the query, the backend and what came back."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), unique=True)
    query: Mapped[str] = mapped_column(default="")
    backend: Mapped[str] = mapped_column(default="")
    n_results: Mapped[int] = mapped_column(default=0)
    results: Mapped[list[Any]] = mapped_column(default=list)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class DocumentBlob(Base):
    """A body stored once, whatever number of pages or sources point at it."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Page(Base):
    """A fetched URL; ``url_sha256`` keys it because URLs can outgrow an index entry."""

    __tablename__ = "pages"

    url_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str]
    final_url: Mapped[str] = mapped_column(default="")
    status: Mapped[int] = mapped_column(default=200)
    content_type: Mapped[str] = mapped_column(default="")
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("documents.sha256"), index=True)
    fetched_at: Mapped[float] = mapped_column(Float, default=0.0)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Source(Base):
    """A source a run read (and may cite); its text is a document."""

    __tablename__ = "sources"

    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    title: Mapped[str] = mapped_column(default="")
    url: Mapped[str] = mapped_column(default="")
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("documents.sha256"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Citation(Base):
    """A finished run's numbered citations, as the loop gave them."""

    __tablename__ = "citations"
    __table_args__ = (UniqueConstraint("run_id", "number", name="uq_citations_run_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    number: Mapped[int]
    doc_id: Mapped[str] = mapped_column(default="")
    title: Mapped[str] = mapped_column(default="")
    url: Mapped[str] = mapped_column(default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The citation exactly as the loop gave it, so it reads back unchanged."""


class Report(Base):
    """The Markdown report of a report-mode run."""

    __tablename__ = "reports"

    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    markdown: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LedgerRow(Base):
    """One spend, written in the same transaction as the step that caused it, so ledger = sum of steps."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(64), default="")
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    searches: Mapped[int] = mapped_column(default=0)
    fetches: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    money: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Batch(Base):
    """A batch of questions under one budget."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    budget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    pool_tokens: Mapped[int] = mapped_column(default=0, server_default="0")
    """The batch pool's tokens not granted to any run: updated in place, atomically, by every worker."""
    pool_searches: Mapped[int] = mapped_column(default=0, server_default="0")


class Job(Base):
    """One question of a batch; workers claim pending jobs atomically."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("batch_id", "question_id", name="uq_jobs_batch_question"),
        Index("ix_jobs_batch_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64), ForeignKey("batches.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(256))
    question: Mapped[str]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    run_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("runs.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str] = mapped_column(default="")
    error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    lease_until: Mapped[datetime | None]
    """A running job whose lease has passed belongs to a dead worker; another may claim it."""
    share_tokens: Mapped[int] = mapped_column(default=0, server_default="0")
    """The job's planned share of the batch budget."""
    share_searches: Mapped[int] = mapped_column(default=0, server_default="0")
    grant_tokens: Mapped[int | None]
    """What the job drew from the pool when first claimed: its run's hard caps (kept across claims)."""
    grant_searches: Mapped[int | None]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    """Input fields beyond id and question, carried to the outputs."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What the finished run decided and spent (difficulty, allocation, why it stopped), for the reports."""


class OutcomeRow(Base):
    """One (question, budget point) of an outcome table: what was spent and how good the answer was."""

    __tablename__ = "outcome_rows"
    __table_args__ = (Index("ix_outcome_rows_batch_question", "batch_id", "question_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("batches.id", ondelete="CASCADE"))
    run_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("runs.id", ondelete="SET NULL"))
    question_id: Mapped[str] = mapped_column(String(256))
    question: Mapped[str] = mapped_column(default="")
    budget_tokens: Mapped[int]
    budget_searches: Mapped[int]
    shape: Mapped[str] = mapped_column(String(32), default="sequential")
    answer: Mapped[str] = mapped_column(default="")
    score_em: Mapped[float] = mapped_column(Float, default=0.0)
    score_f1: Mapped[float] = mapped_column(Float, default=0.0)
    score_recall: Mapped[float] = mapped_column(Float, default=0.0)
    spent_prompt_tokens: Mapped[int] = mapped_column(default=0)
    spent_tokens: Mapped[int] = mapped_column(default=0)
    spent_searches: Mapped[int] = mapped_column(default=0)
    spent_fetches: Mapped[int] = mapped_column(default=0)
    spent_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    difficulty: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


__all__ = [
    "Base",
    "Batch",
    "Citation",
    "DocumentBlob",
    "Job",
    "LLMCall",
    "LedgerRow",
    "OutcomeRow",
    "Page",
    "Report",
    "Run",
    "SearchCall",
    "Source",
    "Step",
    "UTCDateTime",
    "utc_now",
]
