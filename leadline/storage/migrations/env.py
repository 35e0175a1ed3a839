"""Alembic environment for the run database, usable from inside the installed package.

leadline runs migrations programmatically (``leadline.storage.migrate``): it hands over an open
connection, already inside a transaction that holds the migration lock, through
``config.attributes["connection"]``. Run by hand (``alembic -x url=...``), it makes its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from leadline.storage.engine import WRITE_OPTION, make_engine
from leadline.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with -x url=... (or use `leadline db upgrade --db URL`)")
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("leadline migrations run online only")
run_migrations_online()
