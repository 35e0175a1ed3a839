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

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL

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


__all__ = ["StoreAccess", "core_table"]
