"""Connection plumbing shared by the store's parts: schema check on first use, read and write transactions.

A write transaction is SQLite's ``BEGIN IMMEDIATE`` (see ``engine.py``); a read is a plain ``BEGIN``.
Driver errors inside either become :class:`~leadline.errors.StorageError`. ``_insert`` gives the
dialect's own INSERT so ``ON CONFLICT`` clauses work on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, StatementError

try:  # psycopg is the PostgreSQL extra's; the direct path is only taken on PostgreSQL
    from psycopg.rows import namedtuple_row
except ImportError:  # pragma: no cover - SQLite-only installs
    namedtuple_row = None  # type: ignore[assignment]

from leadline.errors import ConfigError
from leadline.storage import migrate
from leadline.storage.engine import WRITE_OPTION, storage_errors


def core_table(model: Any) -> Table:
    """The Core table behind a mapped class (statements on it skip the ORM's per-call work)."""
    table: Table = model.__table__
    return table


class StoreAccess:
    """An engine, a once-per-store schema check, and transaction helpers. Safe to share across threads."""

    def __init__(self, engine: Engine, *, auto_upgrade: bool = True) -> None:
        self.engine = engine
        self._auto_upgrade = auto_upgrade
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._dialect = engine.dialect.name
        self._statements: dict[str, Any] = {}
        self._driver_sql: dict[tuple[str, tuple[str, ...]], _DriverStatement] = {}

    @property
    def url(self) -> URL:
        """The database URL."""
        return self.engine.url

    def close(self) -> None:
        """Dispose of the engine and its connections."""
        self.engine.dispose()

    def ensure_schema(self) -> None:
        """Upgrade (or just check) the schema once per store."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with storage_errors(self.url):
                if self._auto_upgrade:
                    migrate.upgrade(self.engine)
                else:
                    state = migrate.schema_state(self.engine)
                    if not state.up_to_date:
                        raise ConfigError(
                            f"database schema is at {state.current!r}, this leadline needs {state.head!r}: "
                            "run `leadline db upgrade`"
                        )
            self._schema_ready = True

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self.ensure_schema()
        with (
            storage_errors(self.url),
            self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self.ensure_schema()
        with storage_errors(self.url), self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, model: Any) -> Any:
        return (pg_insert if self._dialect == "postgresql" else sqlite_insert)(model)

    def _prepared(self, name: str, build: Callable[[], Any]) -> Any:
        """A statement of the hot paths built once per store and then executed with parameters only.

        Building ``insert(Model).values(**row)`` anew at every call costs more CPU than the database
        takes to run it (SQLAlchemy coerces every value and derives a cache key each time); a statement
        built once on the table and given its rows as parameters skips all of that.
        """
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = build()
        return stmt

    def _execute_direct(
        self,
        conn: Connection,
        name: str,
        build: Callable[[], Any],
        params: Any,
        *,
        scalar: bool = False,
        row: bool = False,
    ) -> Any:
        """Execute a :meth:`_prepared` statement in ``conn``'s transaction, through the driver's cursor on
        PostgreSQL. ``params`` is a dict, or a list of dicts for ``executemany``; with ``scalar`` the first
        column of the first row (None without a row) is returned, with ``row`` the first row (columns by
        name, None without a row), else the rows affected.

        A statement SQLAlchemy has compiled before still costs, per call, a cache key derived from its
        whole structure and an execution context; for the hottest writes (every recorded step, every
        source read) that was more CPU than psycopg's own work. The statement is compiled once here, its
        parameters converted by its columns' own types, and driver errors are SQLAlchemy's as they
        would have been (a lost connection is invalidated). Elsewhere it is ``conn.execute``.
        """
        if self._dialect != "postgresql":
            result = conn.execute(self._prepared(name, build), params)
            return result.scalar() if scalar else result.first() if row else result.rowcount
        direct = self._driver_statement(name, build, params)
        converted = (
            [direct.convert(p) for p in params] if isinstance(params, list) else direct.convert(params)
        )
        return self._send(
            conn.connection.dbapi_connection, conn.invalidate, direct.sql, converted, scalar=scalar, row=row
        )

    def _write_one(
        self, name: str, build: Callable[[], Any], params: dict[str, Any], *, scalar: bool = False
    ) -> Any:
        """One :meth:`_prepared` write statement in a transaction of its own; returns as
        :meth:`_execute_direct` does.

        On PostgreSQL the statement is sent alone on a pooled driver connection in autocommit (a single
        statement is its own transaction there): no ``BEGIN`` and ``COMMIT`` round trips and none of
        SQLAlchemy's connection and transaction machinery, which cost a hot write (a recorded step) as
        much CPU as the statement itself. Elsewhere it is :meth:`_write`.
        """
        if self._dialect != "postgresql":
            with self._write() as conn:
                return self._execute_direct(conn, name, build, params, scalar=scalar)
        direct = self._driver_statement(name, build, params)
        return self._autocommit(direct.sql, direct.convert(params), scalar=scalar)

    def _autocommit(self, sql: str, params: dict[str, Any], *, scalar: bool = False) -> Any:
        """PostgreSQL only: ``sql`` (the driver's parameter style, converted ``params``) as one statement
        in autocommit on a pooled connection, which goes back to the pool transactional; returns as
        :meth:`_execute_direct` does."""
        self.ensure_schema()
        with storage_errors(self.url):
            raw = self.engine.raw_connection()
            try:
                driver: Any = raw.dbapi_connection
                try:
                    driver.autocommit = True
                except self.engine.dialect.loaded_dbapi.Error as exc:  # a connection left broken
                    raw.invalidate(exc)
                    raise self._driver_error(exc, sql, params, lost=True) from exc
                try:
                    return self._send(driver, raw.invalidate, sql, params, scalar=scalar)
                finally:
                    if not driver.closed:
                        driver.autocommit = False
            finally:
                raw.close()

    def _driver_statement(self, name: str, build: Callable[[], Any], params: Any) -> _DriverStatement:
        keys = tuple(params[0] if isinstance(params, list) else params)
        direct = self._driver_sql.get((name, keys))
        if direct is None:  # an INSERT's columns are the parameters' keys, as SQLAlchemy compiles it
            statement = self._prepared(name, build)
            direct = self._driver_sql[(name, keys)] = _DriverStatement(statement, self.engine, keys)
        return direct

    def _send(
        self,
        dbapi: Any,
        invalidate: Callable[[BaseException], None],
        sql: str,
        params: Any,
        *,
        scalar: bool = False,
        row: bool = False,
    ) -> Any:
        """``sql`` with driver-ready ``params`` (a list: ``executemany``) on a driver connection; driver
        errors become SQLAlchemy's, as its own execution would raise them."""
        cursor = dbapi.cursor(row_factory=namedtuple_row) if row else dbapi.cursor()
        try:
            if isinstance(params, list):
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
            if scalar or row:
                first = cursor.fetchone()
                return first if row or first is None else first[0]
            return cursor.rowcount
        except self.engine.dialect.loaded_dbapi.Error as exc:
            lost = self.engine.dialect.is_disconnect(exc, dbapi, cursor)
            if lost:
                invalidate(exc)
            raise self._driver_error(exc, sql, params, lost=lost) from exc
        finally:
            cursor.close()

    def _driver_error(self, exc: Exception, sql: str, params: Any, *, lost: bool) -> StatementError:
        """A driver error as SQLAlchemy's own execution would raise it (``lost``: the connection was
        invalidated), so :func:`storage_errors` and the callers see the usual exceptions."""
        dialect = self.engine.dialect
        return DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        )

    def _update_by_id(
        self, conn: Connection, model: Any, key: str, row_id: Any, values: dict[str, Any]
    ) -> int:
        """``UPDATE model SET values WHERE id = row_id`` as a statement built once per set of columns
        (``key`` names the id's parameter, which must not be a column name); returns the rows changed."""
        columns = tuple(values)
        table = core_table(model)

        def build() -> Any:
            sets = {c: bindparam(c, type_=table.c[c].type) for c in columns}
            return update(table).where(table.c.id == bindparam(key)).values(sets)

        return int(
            self._execute_direct(conn, f"update:{table.name}:{columns}", build, {key: row_id, **values})
        )


class _DriverStatement:
    """A statement compiled once for the engine's dialect, with the converters of its parameters."""

    def __init__(self, statement: Any, engine: Engine, keys: tuple[str, ...]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        self._convert: dict[str, Callable[[Any], Any]] = {}
        self._literals: dict[str, Any] = {}
        """The values the statement carries itself (``coalesce(x, 0)``, ``status = 'pending'``)."""
        for key, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._convert[key] = processor
            if not bind.required and key not in keys:
                self._literals[key] = bind.effective_value

    def convert(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self._convert and not self._literals:
            return params
        out = self._literals | params
        for key, processor in self._convert.items():
            if key in out:
                out[key] = processor(out[key])
        return out


__all__ = ["StoreAccess", "core_table"]
