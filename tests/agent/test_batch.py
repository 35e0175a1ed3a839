"""Batches under one total budget, and the adaptive controller driving the real loop (with fakes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadline import Budget, LeadlineError, Researcher, ResearchResult, Settings
from leadline.budgets.adaptive import AdaptiveController
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import QUESTION, sensible

EASY = "Who wrote The Selfish Gene?"


def researcher(docs: list[Document], **kwargs: object) -> Researcher:
    return Researcher(
        Settings(), llm=ScriptedLLM(sensible), search=FakeSearch(docs), store=MemoryRunStore(), **kwargs
    )  # type: ignore[arg-type]


def test_adaptive_batch_stays_within_the_total_budget(docs: list[Document]) -> None:
    per = Budget(tokens=400, searches=3, search_cost_tokens=100)
    questions = [QUESTION, EASY, "Where are cats found?"]
    results = researcher(docs).batch(questions, per_question=per, adaptive=True)
    assert len(results) == 3 and all(isinstance(r, ResearchResult) for r in results)
    spent = sum(r.spend.tokens + 100 * r.spend.searches for r in results if isinstance(r, ResearchResult))
    assert spent <= 3 * (400 + 100 * 3)
    assert all(r.answer for r in results if isinstance(r, ResearchResult))
    assert all(r.spend.searches >= 1 for r in results if isinstance(r, ResearchResult))


def test_a_failing_question_does_not_crash_the_batch(docs: list[Document]) -> None:
    from leadline.errors import LLMResponseError

    def respond(messages, params):  # type: ignore[no-untyped-def]
        if "cats" in messages[-1].content.lower():
            raise LLMResponseError("the server refused this prompt", status_code=400)
        return sensible(messages, params)

    r = Researcher(Settings(), llm=ScriptedLLM(respond), search=FakeSearch(docs), store=MemoryRunStore())
    results = r.batch(
        [QUESTION, "Where are cats found?", EASY], per_question=Budget(tokens=300), adaptive=False
    )
    assert isinstance(results[0], ResearchResult) and isinstance(results[2], ResearchResult)
    assert isinstance(results[1], LLMResponseError)
    with pytest.raises(LeadlineError):  # a blank question is refused at the edge, before anything runs
        r.batch([QUESTION, "   "])


def test_adaptive_controller_runs_the_loop_and_respects_hard_caps(docs: list[Document]) -> None:
    r = researcher(docs, controller=AdaptiveController)
    result = r.research(QUESTION, budget=Budget(tokens=300, searches=2))
    assert result.answer and result.spend.tokens <= 300 and 1 <= result.spend.searches <= 2
    assert "difficulty" in result.trace[0]["detail"]


def test_tune_runs_every_question_at_every_point_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Document]
) -> None:
    from leadline import cli

    monkeypatch.setattr("leadline.api.Researcher", lambda settings, **kw: researcher(docs))
    rows = [
        {"id": f"q{i}", "question": q, "answers": ["Balliol College"], "supporting_doc_ids": ["d2"]}
        for i, q in enumerate([QUESTION, EASY, "Which college did Dawkins attend?"])
    ]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "table.jsonl"
    for split in ("train", "dev"):
        result = CliRunner().invoke(
            cli.app, ["tune", str(qfile), "--points", "96x1,400x3", "--out", str(out), "--split", split]
        )
        assert result.exit_code == 0, result.stderr
    table = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(table) == 3 * 2  # the dev pass found the rows already there and did not rerun them
    assert {(r["tokens"], r["searches"]) for r in table} == {(96, 1), (400, 3)}
    big = next(r for r in table if r["tokens"] == 400 and r["question_id"] == "q0")
    assert big["f1"] == 1.0 and big["recall"] == 1.0 and big["spent_searches"] <= 3
    assert "400 x 3" in result.stdout
    result = CliRunner().invoke(cli.app, ["tune", str(qfile), "--points", "lots", "--out", str(out)])
    assert result.exit_code == 1 and "TOKENSxSEARCHES" in result.stderr


@pytest.mark.parametrize("adaptive", [False, True])
def test_a_batchs_think_cap_holds_in_every_run(docs: list[Document], adaptive: bool) -> None:
    per = Budget(tokens=600, searches=3, thinks=0, search_cost_tokens=100)
    results = researcher(docs).batch([QUESTION, EASY], per_question=per, adaptive=adaptive)
    assert all(isinstance(r, ResearchResult) for r in results)
    for r in results:
        assert isinstance(r, ResearchResult)
        assert not [t for t in r.trace if t["node"] == "think"] and r.spend.searches >= 1
