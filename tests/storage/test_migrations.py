"""Alembic migrations: they build exactly the models, run from the package, and refuse newer schemas."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from leadline.errors import ConfigError, SchemaVersionError
from leadline.storage import migrate
from leadline.storage.engine import WRITE_OPTION, make_engine
from leadline.storage.models import Base
from leadline.storage.store import SqlRunStore


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        state = migrate.upgrade(engine)
        assert state.up_to_date and state.current == migrate.head_revision()
        with engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diffs == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert migrate.upgrade(engine).up_to_date
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            command.downgrade(migrate.alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        assert migrate.schema_state(engine).current is None
        assert migrate.upgrade(engine).up_to_date
    finally:
        engine.dispose()


def test_migration_scripts_ship_inside_the_package() -> None:
    assert migrate.MIGRATIONS_DIR.parent.name == "storage"
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert list((migrate.MIGRATIONS_DIR / "versions").glob("0001_*.py"))


def test_a_store_upgrades_an_empty_database_on_first_use(db_url: str) -> None:
    with SqlRunStore.from_url(db_url) as store:
        run_id = store.create_run(question="q", mode="answer", model="m", budget={}, settings={})
        assert store.get_run(run_id).question == "q"
        assert migrate.schema_state(store.engine).up_to_date


def test_without_auto_upgrade_an_old_schema_is_reported(db_url: str) -> None:
    with (
        SqlRunStore.from_url(db_url, auto_upgrade=False) as store,
        pytest.raises(ConfigError, match="db upgrade"),
    ):
        store.list_runs()


def test_a_database_from_a_newer_leadline_is_refused_and_left_intact(db_url: str) -> None:
    with SqlRunStore.from_url(db_url) as store:
        run_id = store.create_run(question="kept", mode="answer", model="m", budget={}, settings={})
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with SqlRunStore.from_url(db_url) as newer, pytest.raises(SchemaVersionError, match="newer"):
        newer.get_run(run_id)
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaVersionError):
            migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT question FROM runs")).scalar_one() == "kept"
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                == "9999_from_the_future"
            )
    finally:
        engine.dispose()
