"""End to end on real components: the embedded model researches the real demo index, recorded in SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import leadline
from leadline.cli import app
from leadline.storage.store import SqlRunStore
from leadline.tools.corpus_index import resolve_corpus

pytestmark = pytest.mark.slow

QUESTION = "Alvaro Mexia had a diplomatic mission with which tribe of indigenous people?"


def test_research_over_the_demo_index_with_the_embedded_model(leadline_home: Path) -> None:
    events: list[dict] = []
    budget = leadline.Budget(tokens=256, searches=2)
    result = leadline.research(QUESTION, budget=budget, progress=events.append)
    assert result.answer.strip()
    assert result.citations
    index = resolve_corpus("demo", leadline_home / "indexes")
    for c in result.citations:  # every citation is a passage the run actually read from the corpus
        assert index.get(c.doc_id).text == c.passage
    assert 1 <= result.spend.searches <= 2
    assert 0 < result.spend.tokens <= 256
    assert {e["node"] for e in events} >= {"assess", "plan", "search", "read", "answer"}
    store = SqlRunStore.from_url(f"sqlite:///{leadline_home / 'leadline.db'}")
    run = store.get_run(result.run_id)
    assert run.status == "done" and run.answer == result.answer
    assert sum(s.searches for s in store.list_steps(result.run_id)) == result.spend.searches


def test_cli_json_prints_only_the_result_on_stdout() -> None:
    result = CliRunner().invoke(
        app, ["ask", QUESTION, "--json", "--budget-tokens", "160", "--budget-searches", "1"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] and data["citations"] and data["spend"]["searches"] == 1
    assert "step" in result.stderr  # live progress went to stderr
