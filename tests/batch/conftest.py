"""Batch fixtures: an empty database per test (SQLite, and PostgreSQL when reachable), a tiny corpus."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.tools.base import Document

PG_CONNINFO = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_reason() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            pass
        import psycopg

        with psycopg.connect(PG_CONNINFO, connect_timeout=3):
            pass
    except Exception as exc:
        return f"PostgreSQL on 127.0.0.1:5432 not usable ({exc}); skipped"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"leadline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'leadline.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def docs() -> list[Document]:
    return [
        Document(doc_id="d1", title="The Selfish Gene", text="The Selfish Gene is a 1976 book by Richard Dawkins."),
        Document(doc_id="d2", title="Richard Dawkins", text="Richard Dawkins studied at Balliol College, Oxford."),
        Document(doc_id="d3", title="Cats", text="Cats are small domesticated animals."),
    ]
