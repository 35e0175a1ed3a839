"""LangGraph checkpoints in the run database, through the official savers, so a killed run resumes.

The graph state after every super-step goes to the same database as the runs: ``AsyncSqliteSaver`` on
the same SQLite file (its ``checkpoints`` / ``writes`` tables sit beside ours) or ``AsyncPostgresSaver``
on the same PostgreSQL database (as :class:`~leadline.storage.pg_saver.SingleStatementPostgresSaver`,
which sends each write as one statement). The thread id of a run's checkpoints is its run id, which is what
``SqlRunStore.gc_checkpoints`` and ``delete_run`` rely on. Both configurations pass
``langgraph-checkpoint-conformance`` (tests/storage/test_checkpoint_conformance.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import URL

from leadline.errors import ConfigError, StorageError
from leadline.storage.engine import BUSY_TIMEOUT_MS, describe_error, normalize_url, sqlite_path

_PG_SETUP_LOCK = 7_413_025_002
"""Advisory-lock key: the saver's own migrations are not safe to run from two processes at once."""


def postgres_conninfo(url: str | URL) -> str:
    """A libpq URI for psycopg: the SQLAlchemy URL without its ``+psycopg`` driver part."""
    parsed = normalize_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def thread_config(run_id: str) -> dict[str, Any]:
    """The ``config`` that addresses a run's checkpoints."""
    return {"configurable": {"thread_id": run_id}}


@asynccontextmanager
async def open_checkpointer(url: str | URL) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An async LangGraph saver on the database at ``url``, set up and ready; closed on exit."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        async with _sqlite_saver(parsed) as saver:
            yield saver
    elif parsed.get_backend_name() == "postgresql":
        async with _postgres_saver(parsed) as saver:
            yield saver
    else:  # pragma: no cover - normalize_url refuses other backends
        raise ConfigError(f"no checkpointer for {parsed.drivername}")


@asynccontextmanager
async def _sqlite_saver(url: URL) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the database directory {path.parent}: {exc}") from exc
    try:
        conn = await aiosqlite.connect(str(path) if path else ":memory:", timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise describe_error(exc, url) from exc
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Each checkpoint fsyncs the WAL it shares with the store, so every step recorded before it is
        # durable too, whatever synchronous level the store connection uses.
        await conn.execute("PRAGMA synchronous = FULL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
    except sqlite3.Error as exc:
        await conn.close()
        raise describe_error(exc, url) from exc
    except BaseException:
        await conn.close()
        raise
    try:
        yield saver
    finally:
        await conn.close()


async def _take_setup_lock(conn: Any) -> None:
    """Polled, not waited for: a session waiting on the lock holds a transaction open, which the
    holder's CREATE INDEX CONCURRENTLY waits for in turn (a deadlock between two new workers)."""
    while True:
        row = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (_PG_SETUP_LOCK,))
        ).fetchone()
        if row["got"]:
            return
        await asyncio.sleep(0.05)


@asynccontextmanager
async def _postgres_saver(url: URL) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    import psycopg
    from psycopg.rows import dict_row

    from leadline.storage.pg_saver import SingleStatementPostgresSaver

    conninfo = postgres_conninfo(url)
    try:
        conn = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row
        )
    except psycopg.Error as exc:
        raise describe_error(exc, url) from exc
    try:
        saver = SingleStatementPostgresSaver(conn=conn)
        # Session-level lock on the same connection: setup runs in autocommit (CREATE INDEX
        # CONCURRENTLY needs it), so a transaction-scoped lock would not cover it.
        await _take_setup_lock(conn)
        try:
            await saver.setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_SETUP_LOCK,))
    except psycopg.Error as exc:
        await conn.close()
        raise describe_error(exc, url) from exc
    except BaseException:
        await conn.close()
        raise
    try:
        yield saver
    finally:
        await conn.close()


__all__ = ["open_checkpointer", "postgres_conninfo", "thread_config"]
