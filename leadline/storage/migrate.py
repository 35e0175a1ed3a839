"""Schema versions: bring a database to this leadline's schema, or refuse one written by a newer leadline.

Alembic runs from inside the installed package (no ``alembic.ini``): the script directory is the
``migrations`` folder next to this module. Upgrades happen inside one write transaction that also
holds a migration lock (SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so many workers
starting at once on a fresh database upgrade it exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from leadline.errors import SchemaVersionError
from leadline.storage.engine import WRITE_OPTION, display_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_PG_MIGRATION_LOCK = 7_413_025_001
"""Advisory-lock key that serializes leadline migrations on one PostgreSQL database."""


@dataclass(frozen=True)
class SchemaState:
    """A database's schema version and the newest this leadline knows."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """Whether the database is at the newest version."""
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for leadline's migrations, optionally on an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest migration this leadline ships."""
    head = _script().get_current_head()
    assert head is not None, "leadline ships at least one migration"
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(current: str | None, where: str) -> None:
    if current is None:
        return
    script = _script()
    try:
        known = script.get_revision(current) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise SchemaVersionError(
            f"{where} has schema version {current!r}, newer than this leadline knows "
            f"(newest known: {head_revision()!r}); upgrade leadline to use it — nothing was changed"
        )


def schema_state(engine: Engine) -> SchemaState:
    """The database's schema state; a SchemaVersionError for a version this leadline does not know."""
    with engine.connect() as conn:
        current = _current(conn)
    _check_known(current, display_url(engine.url))
    return SchemaState(current=current, head=head_revision())


def upgrade(engine: Engine) -> SchemaState:
    """Bring the database to the newest schema this leadline knows; a no-op when it is there."""
    head = head_revision()
    with engine.connect() as probe:
        current = _current(probe)
    _check_known(current, display_url(engine.url))
    if current == head:
        return SchemaState(current=current, head=head)
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        # Another process may have upgraded while we waited for the lock: look again.
        current = _current(conn)
        _check_known(current, display_url(engine.url))
        if current != head:
            command.upgrade(alembic_config(conn), "head")
    return SchemaState(current=head, head=head)


__all__ = ["MIGRATIONS_DIR", "SchemaState", "alembic_config", "head_revision", "schema_state", "upgrade"]
