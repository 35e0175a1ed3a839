"""The runtime controller in the real loop with scripted models: stop when probes agree, go on when they
do not, and a batch pool that moves budget from settled runs to open ones within its total."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace

from leadline import Budget, Researcher, ResearchResult, Settings
from leadline.budgets.pool import BatchPool
from leadline.budgets.runtime_controller import RuntimeController
from leadline.llm.base import GenerationParams, Message
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

QUESTION = "Which river flows through the old capital of the kingdom?"


def corpus() -> list[Document]:
    start = Document(doc_id="start", title="Kingdom", text="A river flows through the old capital.")
    return [start] + [
        Document(doc_id=f"d{i}", title=f"Note {i}", text=f"Clue{i} names one more stop.") for i in range(40)
    ]


def scripted(agree: bool) -> ScriptedLLM:
    counter = itertools.count()

    def respond(messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        n = next(counter)
        if '"queries"' in prompt:
            return json.dumps({"queries": ["clue0"]})
        if '"next_query"' in prompt:
            answer = "The Thames" if agree else f"River {n}"
            return json.dumps({"known": "a river", "answer_so_far": answer, "next_query": f"clue{n}"})
        if '"answer"' in prompt:
            return json.dumps({"answer": "The Thames", "sources": [1]})
        return "report"

    return ScriptedLLM(respond)


def run(agree: bool, controller: RuntimeController, budget: Budget) -> ResearchResult:
    r = Researcher(
        Settings(),
        llm=scripted(agree),
        search=FakeSearch(corpus()),
        store=MemoryRunStore(),
        controller=controller,
    )
    return r.research(QUESTION, budget=budget)


BUDGET = Budget(tokens=4000, searches=12, steps=60, search_cost_tokens=200)


def test_a_run_stops_early_when_its_probes_agree() -> None:
    ctl = RuntimeController(price=1e-5)
    result = run(True, ctl, BUDGET)
    assert result.answer == "The Thames"
    reasons = [t["detail"] for t in result.trace if t["node"] == "decide"]
    assert any("settled" in r for r in reasons), reasons
    assert reasons[-1].startswith("runtime controller") and "answer now" in reasons[-1]
    assert result.spend.searches < BUDGET.searches and result.forced is None
    assert "priors (no traces fitted)" in reasons[-1]  # which controller ran, and on what numbers


def test_a_run_goes_on_when_its_probes_disagree() -> None:
    agreeing = run(True, RuntimeController(price=1e-5), BUDGET)
    disagreeing = run(False, RuntimeController(price=1e-5), BUDGET)
    steps_agree = sum(1 for t in agreeing.trace if t["node"] in ("search", "think"))
    steps_disagree = sum(1 for t in disagreeing.trace if t["node"] in ("search", "think"))
    assert steps_disagree > steps_agree + 1
    assert (
        disagreeing.spend.searches + disagreeing.spend.llm_calls
        > agreeing.spend.searches + agreeing.spend.llm_calls
    )


def test_a_batch_pool_moves_budget_from_settled_runs_to_open_ones_within_its_total() -> None:
    share = (600, 4)  # each run's share of the batch: tokens, searches
    caps = Budget(tokens=4000, searches=12, steps=60, search_cost_tokens=200)  # room for grants
    pool = BatchPool()
    results, controllers = [], []
    for agree in (True, False):  # the first run settles early; the second keeps finding new sources
        ctl = RuntimeController(price=1e-5, pool=pool, share=share)
        results.append(run(agree, ctl, caps))
        controllers.append(ctl)
    open_run = results[1]
    snap = pool.snapshot()
    assert snap.deposited_tokens > 0 and snap.deposited_searches > 0  # the settled run gave back its rest
    assert controllers[0].granted == [0, 0] and controllers[1].granted != [0, 0]
    assert any("drawn from the pool" in t["detail"] for t in open_run.trace)
    assert open_run.spend.tokens > share[0] or open_run.spend.searches > share[1]  # beyond its own share
    # ... and the batch never spends more than its total.
    assert sum(r.spend.tokens for r in results) <= 2 * share[0]
    assert sum(r.spend.searches for r in results) <= 2 * share[1]
    assert (
        snap.withdrawn_tokens <= snap.deposited_tokens and snap.withdrawn_searches <= snap.deposited_searches
    )


def test_the_runtime_controller_plans_within_the_budgets_think_cap() -> None:
    free = run(False, RuntimeController(price=1e-5), BUDGET)
    assert sum(1 for t in free.trace if t["node"] == "think") >= 2  # uncapped, it thinks on open runs
    for cap in (0, 1):
        capped = run(False, RuntimeController(price=1e-5), replace(BUDGET, thinks=cap))
        assert sum(1 for t in capped.trace if t["node"] == "think") == cap
        reasons = [t["detail"] for t in capped.trace if t["node"] == "decide"]
        # the controller itself keeps to the cap: the loop never has to overrule a think
        assert "no think steps left" not in reasons, reasons
        assert capped.spend.searches >= 1 and capped.answer == "The Thames"
