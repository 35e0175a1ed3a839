"""Database fixtures: every storage test runs on SQLite and, when it is reachable, on PostgreSQL.

The PostgreSQL fixtures (``pg_url``, ``pg_urls``, ``pg_server``: a fresh schema per test, the ``postgres``
marker added at collection, a failure instead of a skip under CI) live in ``tests/pg_fixtures.py`` and
serve the whole suite.

Tests that start processes (``test_concurrency``, ``test_resume_kill``) start them from the fork server:
a plain fork of pytest's process copies the threads other tests left running (and the site server's),
and a child that inherits a lock held mid-operation can hang. The server imports the package once
(below), so each child forks from a warm, single-threaded process instead of importing it again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.storage.store import SqlRunStore

# Takes effect when the first test starts the (process-wide) fork server.
multiprocessing.set_forkserver_preload(
    ["pytest", "leadline", "leadline.storage.store", "leadline.testing", "leadline.wiring"]
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs' / 'leadline.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[SqlRunStore]:
    s = SqlRunStore.from_url(db_url)
    try:
        yield s
    finally:
        s.close()
