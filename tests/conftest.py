"""Shared test setup: every test gets its own leadline home, so no test touches the user's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pg_fixtures"]  # tests/pg_fixtures.py: PostgreSQL schemas per test

# The test running now, kept in the file `make test` names: when the interpreter dies from a signal (a bus
# error, say) CI keeps only the tail of the output, which faulthandler fills with pytest's own frames, so
# `make test` prints the file after a crash to name the test. Taken out of the environment here, so a
# pytest that a test starts in a subprocess does not write it too.
_running_path = os.environ.pop("LEADLINE_RUNNING_TEST_FILE", None)
_RUNNING = Path(_running_path) if _running_path else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if _RUNNING is not None:
        _RUNNING.unlink(missing_ok=True)  # a crashed run's name must not outlive it


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if _RUNNING is not None:
        _RUNNING.parent.mkdir(parents=True, exist_ok=True)
        _RUNNING.write_text(nodeid + "\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _RUNNING is not None:
        _RUNNING.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the whole run: a packaged model is joined and verified once (about a
    gigabyte for the default), not once per test home."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def leadline_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_models: Path
) -> Path:
    home = tmp_path_factory.mktemp("leadline-home")
    (home / "models").symlink_to(shared_models, target_is_directory=True)
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
