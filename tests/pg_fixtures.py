"""PostgreSQL for tests: a fresh schema per test on the server at 127.0.0.1:5432 (user postgres,
database ``test``), dropped afterwards, so tests and concurrent test runs never see each other's tables.

A test that uses these fixtures carries the ``postgres`` marker (added at collection when its author forgot
it). Without a server those tests are skipped with a reason, except under CI (``CI`` set): the CI machines
start PostgreSQL, so there a missing server fails every test that needs it. Loaded for the whole suite by
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

PG_HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("LEADLINE_TEST_PG_PORT", "5432"))
"""The test server's port (5432; a test of the CI rule points it at a closed port)."""
PG_FIXTURES = frozenset({"pg_url", "pg_urls", "pg_server", "postgres_available"})
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"


def _postgres_unreachable_reason() -> str | None:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            pass
    except OSError as exc:
        return f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT} ({exc}); PostgreSQL storage tests skipped"
    try:
        import psycopg

        with psycopg.connect(PG_CONNINFO, connect_timeout=3):
            pass
    except Exception as exc:
        return f"PostgreSQL on {PG_HOST}:{PG_PORT} refused user postgres / database test ({exc}); skipped"
    return None


PG_CONNINFO = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs PostgreSQL is marked ``postgres`` even if its author forgot the marker."""
    for item in items:
        needs_pg = PG_FIXTURES & set(getattr(item, "fixturenames", ()))
        if needs_pg and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_unreachable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, and CI machines run PostgreSQL, so this is a failure")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server(postgres_available: None) -> tuple[str, str]:
    """(libpq conninfo for admin work, SQLAlchemy URL) of the test server's ``test`` database."""
    return PG_CONNINFO, PG_ADMIN_URL


@pytest.fixture
def pg_url(postgres_available: None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema."""
    import psycopg

    schema = f"leadline_test_{uuid.uuid4().hex[:12]}"
    conninfo = PG_CONNINFO
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_urls(postgres_available: None) -> Iterator[Callable[[], str]]:
    """A factory of PostgreSQL URLs, each on its own fresh, empty schema; all dropped afterwards."""
    import psycopg

    schemas: list[str] = []

    def new_url() -> str:
        schema = f"leadline_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"

    try:
        yield new_url
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
