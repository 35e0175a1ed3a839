"""Shared test setup: every test gets its own leadline home, so no test touches the user's files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pg_fixtures"]  # tests/pg_fixtures.py: PostgreSQL schemas per test


@pytest.fixture(autouse=True)
def leadline_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("leadline-home")
    monkeypatch.setenv("LEADLINE_HOME", str(home))
    for var in (
        "LEADLINE_DB_URL",
        "LEADLINE_MODEL",
        "LEADLINE_BASE_URL",
        "LEADLINE_CORPUS",
        "LEADLINE_SEARXNG_URL",
        "OPENAI_API_KEY",
        "LEADLINE_API_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    return home
