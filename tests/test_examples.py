"""Every script in examples/ runs offline on the embedded default (the packaged model, the demo corpus)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.py"))
QUESTION = "Alvaro Mexia had a diplomatic mission with which tribe?"

RUNS: dict[str, list[str]] = {
    "ask.py": [QUESTION],
    "budget_tradeoff.py": [QUESTION, "--points", "128x1,192x1", "--gold", "Ais"],
    "reports.py": ["questions.txt", "out", "--tokens", "256", "--searches", "1"],
    "mcp_client.py": [QUESTION, "--tokens", "192", "--searches", "1"],
}
"""How the test runs each example (small budgets: the point is that it runs, not what it answers)."""


def _pythonpath() -> str:
    """This checkout first, then whatever the test run had (a subprocess imports the same code)."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def test_every_example_has_a_run() -> None:
    assert sorted(RUNS) == EXAMPLES


def _run(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": _pythonpath()}  # LEADLINE_HOME: this test's own (tests/conftest.py)
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *RUNS[name]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a small model on a shared 2-core machine can take minutes per example
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_on_the_embedded_default(name: str, tmp_path: Path) -> None:
    (tmp_path / "questions.txt").write_text(QUESTION + "\n")
    done = _run(name, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    if name == "ask.py":
        assert "Answer: " in out and "Spent " in out
    elif name == "budget_tradeoff.py":
        rows = [line for line in out.splitlines() if "|" in line][1:]
        assert [r.split()[:2] for r in rows] == [["128", "1"], ["192", "1"]]
    elif name == "reports.py":
        reports = list((tmp_path / "out").glob("*.md"))
        assert len(reports) == 1 and reports[0].read_text().strip()
        assert "1 searches" in done.stderr
    elif name == "mcp_client.py":
        assert "tools: research, report, runs" in out
        assert "Answer: " in out and ": done," in out
        assert "progress 1: assess" in done.stderr
