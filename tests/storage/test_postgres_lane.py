"""PostgreSQL really runs in CI: the tests that need it are marked, and under CI a missing server fails.

Checked by running pytest itself in a subprocess, the way CI runs it, against a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT = "9"


def _pytest_under_ci(*args: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = str(ROOT) + os.pathsep + environ.get("PYTHONPATH", "")
    environ.update(CI="true", LEADLINE_TEST_PG_PORT=CLOSED_PORT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_under_ci_a_missing_server_fails_the_postgres_tests() -> None:
    ci = _pytest_under_ci("-m", "postgres", "-x", "tests/storage/test_store.py::test_run_lifecycle")
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "CI is set" in ci.stdout and "1 error" in ci.stdout


def test_no_unmarked_test_needs_the_server() -> None:
    # Under CI with no server, a PostgreSQL test without the marker would fail in the "not postgres"
    # lane; marked, it is deselected. (Exit code 5: nothing left to run.)
    lane = _pytest_under_ci(
        "-m",
        "not postgres",
        "-k",
        "postgres",
        "tests/storage/test_concurrency.py",
        "tests/storage/test_store.py",
        "tests/storage/test_checkpoint_conformance.py",
    )
    assert lane.returncode == 5, lane.stdout + lane.stderr
    assert "deselected" in lane.stdout
