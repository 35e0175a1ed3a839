"""A controller tuned on an outcome table: fitted, saved, loaded and used by a run (budgets/tuned.py)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from leadline import Budget, Researcher, ResearchResult, Settings
from leadline.budgets.adaptive import AdaptiveBatch, AdaptiveController
from leadline.budgets.controller import FixedController
from leadline.budgets.cost import CostModel
from leadline.budgets.pool import LocalGrants, fit_shares
from leadline.budgets.tuned import TunedModel
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeTable, row_from_json
from leadline.evals.tuning import fit_tuned
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import QUESTION, sensible

POINTS = [(64, 1), (256, 1), (256, 2), (1024, 2), (1024, 4)]
EASY = "Who wrote Hamlet?"
HARD = (
    "Which river flows through the birthplace of the composer whose opera premiered in the city where "
    "the author of the novel adapted into the 1962 film was born?"
)


def _table(n: int = 24, *, visible: bool, seed: int = 0) -> OutcomeTable:
    """Train rows: short questions are solved cheaply, long chained ones need more (when ``visible``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n):
        hard = q % 2 == 1
        text = HARD if hard else EASY
        for j, (t, s) in enumerate(POINTS):
            draw = float(rng.random() < 0.2 + 0.15 * j)
            solved = float(j >= (3 if hard else 0)) if visible else draw
            rows.append(
                row_from_json(
                    {
                        "question_id": f"q{q}",
                        "split": "train",
                        "question": text,
                        "tokens": t,
                        "searches": s,
                        "em": solved,
                        "f1": solved,
                    }
                )
            )
    return OutcomeTable(rows)


@pytest.fixture(scope="module")
def fitted() -> TunedModel:
    return fit_tuned(_table(visible=True))


def test_fit_save_load_round_trip(fitted: TunedModel, tmp_path: Path) -> None:
    model = fitted
    assert model.kind in ("buckets", "pooled") and set(model.held_out) == {"buckets", "means"}
    path = tmp_path / "tuned.json"
    model.save(path)
    again = TunedModel.load(path)
    assert again.kind == model.kind and again.held_out == model.held_out
    for question in (EASY, HARD):
        d = model.difficulty().estimate(question)
        assert again.curves.curve_for(d).to_dict() == model.curves.curve_for(d).to_dict()
    assert isinstance(again.controller(), AdaptiveController)


def test_visible_difficulty_gives_buckets_that_spend_more_on_hard_questions() -> None:
    model = fit_tuned(_table(n=40, visible=True))
    assert model.kind == "buckets", model.held_out
    controller = model.controller()
    easy = controller.assess(EASY, Budget(tokens=1024, searches=4))
    hard = model.controller().assess(HARD, Budget(tokens=1024, searches=4))
    assert hard.tokens + 500 * hard.searches > easy.tokens + 500 * easy.searches


def test_no_difficulty_signal_gives_one_pooled_curve() -> None:
    model = fit_tuned(_table(visible=False))
    assert model.kind == "pooled" and model.estimator is None
    curve = model.curves.curve_for(model.difficulty().estimate(EASY))
    assert curve.to_dict() == model.curves.curve_for(model.difficulty().estimate(HARD)).to_dict()


def test_a_run_uses_the_tuned_controller(fitted: TunedModel, docs: list[Document]) -> None:
    model = fitted
    r = Researcher(
        Settings(),
        llm=ScriptedLLM(sensible),
        search=FakeSearch(docs),
        store=MemoryRunStore(),
        controller=model.controller,
    )
    budget = Budget(tokens=600, searches=3)
    result = r.research(QUESTION, budget=budget)
    assert result.answer == "Balliol College"
    # the run's allocation is the tuned controller's, and not what the default (fixed) one would give
    assert result.allocation == asdict(model.controller().assess(QUESTION, budget))
    assert result.allocation != asdict(FixedController().assess(QUESTION, budget))
    assert result.allocation["reason"] != FixedController().assess(QUESTION, budget).reason


def test_bad_files_are_clear_errors(fitted: TunedModel, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read tuned controller"):
        TunedModel.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        TunedModel.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": 99}')
    with pytest.raises(ConfigError, match="format"):
        TunedModel.load(tmp_path / "other.json")
    with pytest.raises(ConfigError, match="cannot write tuned controller"):
        fitted.save(tmp_path / "no-such-dir" / "tuned.json")
    with pytest.raises(ConfigError, match="2 or more budget points"):
        fit_tuned(OutcomeTable([r for r in _table(visible=True) if (r.tokens, r.searches) == POINTS[0]]))


def test_a_batch_plans_with_the_tuned_curves(fitted: TunedModel, docs: list[Document]) -> None:
    r = Researcher(Settings(), llm=ScriptedLLM(sensible), search=FakeSearch(docs), store=MemoryRunStore())
    texts = [QUESTION, QUESTION + " (again)"]
    per_question = Budget(tokens=600, searches=3)
    results = r.batch(texts, per_question=per_question, tuned=fitted)
    assert [getattr(x, "answer", None) for x in results] == ["Balliol College", "Balliol College"]

    # The first run's allocation is what the tuned curves plan, and not what the priors would.
    cost = CostModel.for_budget(per_question)
    total = cost.budget_cost(per_question) * len(texts)

    def first_allocation(batch: AdaptiveBatch) -> dict[str, object]:
        # the run's hard caps are its grant from the batch pool (Researcher.abatch), the rest its plan
        totals = (per_question.tokens * len(texts), per_question.searches * len(texts))
        shares = fit_shares([(batch.plan[t].tokens, batch.plan[t].searches) for t in texts], *totals)
        grant = asyncio.run(LocalGrants(*totals, shares).take(0))
        assert grant is not None
        planned = batch.budget_for(texts[0], steps=per_question.steps)
        budget = replace(planned, tokens=grant[0], searches=grant[1])
        return asdict(batch.controller().assess(texts[0], budget))

    first = results[0]
    assert isinstance(first, ResearchResult)
    assert first.allocation == first_allocation(fitted.batch(texts, total, cost))
    assert first.allocation != first_allocation(AdaptiveBatch(texts, total_budget=total, cost=cost))
