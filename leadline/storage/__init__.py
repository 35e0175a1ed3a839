"""Durable record of runs: SQLAlchemy models, Alembic migrations, the SQL run store (SQLite or
PostgreSQL) and the LangGraph checkpointer on the same database (see docs/storage.md)."""

from leadline.storage.base import RunRecord, RunStore, SourceRecord, StepRecord
from leadline.storage.checkpoint import open_checkpointer
from leadline.storage.export import export_run
from leadline.storage.records import LedgerTotals, OutcomeRecord
from leadline.storage.store import SqlRunStore

__all__ = [
    "LedgerTotals",
    "OutcomeRecord",
    "RunRecord",
    "RunStore",
    "SourceRecord",
    "SqlRunStore",
    "StepRecord",
    "export_run",
    "open_checkpointer",
]
