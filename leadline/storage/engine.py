"""Engines for the run database, configured for many writers and turned into clear errors when unusable.

SQLite gets WAL (readers never block the writer), a busy timeout (writers wait instead of failing),
foreign keys, and ``BEGIN IMMEDIATE`` for write transactions: a deferred transaction that reads and
then writes can fail with "database is locked" without ever waiting, so writers take the write lock
up front (SQLAlchemy's pysqlite recipe: the driver's own BEGIN is switched off and we emit ours).
PostgreSQL goes through psycopg 3. Driver failures that mean "this database cannot be used" (read-only
or missing directory, full disk, a file that is not a database) become :class:`StorageError` with a
message that says what to do; nothing is retried silently.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from leadline.errors import ConfigError, StorageError
from leadline.storage.base import STORE_THREADS

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock before giving up."""

WRITE_OPTION = "leadline_write"
"""Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; a bare ``postgresql://`` gets the psycopg 3 driver we ship."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use sqlite:/// or postgresql+psycopg://"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        raise ConfigError(f"unsupported PostgreSQL driver {parsed.drivername!r}: use postgresql+psycopg://")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    """Whether ``url`` is a SQLite database."""
    return normalize_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    parsed = normalize_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :]
    return Path(database)


def display_url(url: str | URL) -> str:
    """The URL with any password hidden, for messages."""
    return normalize_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_file(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the database directory {path.parent}: {exc.strerror or exc}"
        ) from exc


IDLE_PING_S = 10.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """Hand out only live PostgreSQL connections, without a round trip on every checkout.

    ``pool_pre_ping`` pings at every checkout: a round trip and three driver calls per transaction, about
    a tenth of a batch run's CPU. Here a connection the driver knows is closed or broken, or one idle
    for more than :data:`IDLE_PING_S` (a server restart or a dropped connection happens while it sits in
    the pool), is pinged or discarded, and the pool replaces a dead one with a new connection, as
    pre-ping does (SQLAlchemy's custom pessimistic-disconnect recipe); one just used is handed out as is.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
            raise DisconnectionError("the connection was closed")
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > IDLE_PING_S:
            try:
                alive = engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError(f"the connection failed a ping: {exc}") from exc
            if not alive:
                raise DisconnectionError("the connection failed a ping")


def make_engine(url: str | URL, *, synchronous: str = "NORMAL", pool_size: int | None = None) -> Engine:
    """An engine for ``url`` with leadline's connection settings (see the module docstring).

    ``synchronous`` is SQLite's durability level. NORMAL (the default) in WAL mode keeps every
    committed step through a process crash or SIGKILL and costs no fsync per step; after a power loss
    the database comes back as of an earlier commit, never half-written, and the checkpointer's own
    connection (FULL) fsyncs the shared WAL at every super-step, so at most the steps since the last
    checkpoint can go. FULL fsyncs every step (several ms each on common disks).

    ``pool_size`` is PostgreSQL's number of kept connections; by default one per store thread and two
    for callers outside them (the lease heartbeat, the CLI), so a busy worker does not open and close
    overflow connections (each new PostgreSQL connection is a new server process).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        size = STORE_THREADS + 2 if pool_size is None else pool_size
        engine = create_engine(parsed, pool_size=size, max_overflow=size)
        _ping_when_idle(engine)
        return engine

    path = sqlite_path(parsed)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}
    if path is None:
        # One shared connection, or every checkout would see a different empty in-memory database.
        kwargs["poolclass"] = StaticPool
    else:
        _prepare_sqlite_file(path)
    engine = create_engine(parsed, **kwargs)
    level = synchronous.upper()
    if level not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ConfigError(f"unknown SQLite synchronous level {synchronous!r}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Switch off the driver's implicit BEGIN; _on_begin below emits the right one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {level}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def describe_error(exc: BaseException, url: str | URL) -> StorageError:
    """Turn a driver error into a :class:`StorageError` that says what happened and what to do."""
    text = str(getattr(exc, "orig", None) or exc)
    lowered = text.lower()
    where = display_url(url)
    if "database or disk is full" in lowered or "no space left" in lowered or "disk full" in lowered:
        message = (
            f"the disk holding {where} is full: the last write was rolled back and nothing stored earlier "
            "was lost; free some space and resume the run"
        )
    elif "file is not a database" in lowered or "malformed" in lowered:
        message = f"{where} is not a usable leadline database (corrupt or another kind of file): {text}"
    elif "readonly" in lowered or "read-only" in lowered:
        message = f"{where} is read-only: leadline needs to write to the database and its directory"
    elif "unable to open database file" in lowered:
        message = f"cannot open {where}: the directory is missing or not writable"
    elif "database is locked" in lowered:
        message = f"{where} stayed locked by another writer for {BUSY_TIMEOUT_MS // 1000} s"
    else:
        message = f"database error on {where}: {text}"
    return StorageError(message)


@contextmanager
def storage_errors(url: str | URL) -> Iterator[None]:
    """Re-raise driver errors inside the block as :class:`StorageError` (ours pass through)."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as exc:
        raise describe_error(exc, url) from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"database error on {display_url(url)}: {exc}") from exc


__all__ = [
    "BUSY_TIMEOUT_MS",
    "WRITE_OPTION",
    "describe_error",
    "display_url",
    "is_sqlite",
    "make_engine",
    "normalize_url",
    "sqlite_path",
    "storage_errors",
]
