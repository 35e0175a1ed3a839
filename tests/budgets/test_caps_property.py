"""Property tests of the hard caps: whatever the controller allocates and decides, whatever the model
replies, the recorded completion tokens, searches and fetches never exceed the budget.

Each example runs the whole research loop on scripted fakes. Every count is taken twice: from what the
run store recorded and from what the fake backends really served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadline import Budget, Researcher, Settings
from leadline.budgets.controller import Allocation, Decision, RunObservation
from leadline.llm.base import Choice, Completion, GenerationParams, Message, Usage
from leadline.testing import MemoryRunStore, ScriptedLLM

from .test_enforce import WebSearch

WORDS = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "{", '"answer"', "}"]), max_size=300)
REPLY = st.one_of(
    WORDS.map(" ".join),
    st.lists(st.text(min_size=1, max_size=20), max_size=4).map(lambda qs: json.dumps({"queries": qs})),
    st.tuples(st.text(max_size=30), st.text(max_size=30)).map(
        lambda t: json.dumps({"known": t[0], "answer_so_far": t[1], "next_query": t[1]})
    ),
    st.tuples(st.text(max_size=30), st.lists(st.integers(-3, 30), max_size=5)).map(
        lambda t: json.dumps({"answer": t[0], "sources": t[1]})
    ),
)


@dataclass
class Scripted:
    """A controller that allocates and decides whatever hypothesis drew."""

    allocation: Allocation
    actions: list[str]

    def assess(self, question: str, budget: Budget) -> Allocation:
        return self.allocation

    def decide(self, observation: RunObservation) -> Decision:
        action = self.actions[observation.step % len(self.actions)]
        return Decision(action, "drawn")  # type: ignore[arg-type]

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        return None


class Replies:
    """Replies from a drawn list, in turn; optionally a server that ignores ``max_tokens``."""

    def __init__(self, replies: list[str], overspend: int) -> None:
        self.replies = replies
        self.overspend = overspend
        self.i = 0

    def __call__(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.i += 1
        return self.replies[self.i % len(self.replies)]


class Overspending(ScriptedLLM):
    """ScriptedLLM whose usage claims ``extra`` tokens past ``max_tokens`` per sample (max_tokens ignored)."""

    def __init__(self, replies: Replies, extra: int) -> None:
        super().__init__(replies)
        self.extra = extra

    def _completion(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        done = super()._completion(messages, params)
        n = len(done.choices)
        return Completion(
            choices=tuple(Choice(text=c.text, finish_reason="length") for c in done.choices),
            usage=Usage(done.usage.prompt_tokens, n * (params.max_tokens + self.extra)),
        )


allocations = st.builds(
    Allocation,
    tokens=st.integers(1, 3000),
    searches=st.integers(0, 12),
    shape=st.sampled_from(["sequential", "parallel"]),
    samples=st.integers(1, 8),
    think_tokens=st.integers(1, 800),
)
budgets = st.builds(
    Budget,
    tokens=st.integers(1, 600),
    searches=st.integers(1, 6),
    fetches=st.one_of(st.none(), st.integers(0, 6)),
    steps=st.integers(5, 30),
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _research(budget: Budget, alloc: Allocation, actions: list[str], llm: ScriptedLLM, mode: str):  # type: ignore[no-untyped-def]
    web = WebSearch(pages=3)
    store = MemoryRunStore()
    r = Researcher(
        Settings(), llm=llm, search=web, reader=web, store=store, controller=Scripted(alloc, actions)
    )
    with r:
        result = r.research("alpha beta gamma?", budget=budget, mode=mode)
    return result, store.list_steps(result.run_id), web


@PROPERTY
@given(
    budget=budgets,
    alloc=allocations,
    actions=st.lists(st.sampled_from(["search", "think", "answer"]), min_size=1, max_size=8),
    replies=st.lists(REPLY, min_size=1, max_size=6),
    mode=st.sampled_from(["answer", "report"]),
)
def test_recorded_spend_never_exceeds_the_budget(
    budget: Budget, alloc: Allocation, actions: list[str], replies: list[str], mode: str
) -> None:
    llm = ScriptedLLM(Replies(replies, 0))
    result, steps, web = _research(budget, alloc, actions, llm, mode)
    recorded_tokens = sum(s.completion_tokens for s in steps)
    assert recorded_tokens == result.spend.tokens <= budget.tokens
    assert sum(s.searches for s in steps) == result.spend.searches == len(web.queries) <= budget.searches
    fetches = sum(s.fetches for s in steps)
    assert fetches == result.spend.fetches == len(web.reads)
    if budget.fetches is not None:
        assert fetches <= budget.fetches
    for call in llm.calls:  # each call was granted no more than the budget in all
        assert call.params.n * call.params.max_tokens <= budget.tokens
    assert result.overrun == {}
    assert result.answer
    assert len(result.trace) <= budget.steps  # graph steps: one trace event per node run


@PROPERTY
@given(
    budget=budgets,
    alloc=allocations,
    actions=st.lists(st.sampled_from(["search", "think", "answer"]), min_size=1, max_size=8),
    replies=st.lists(REPLY, min_size=1, max_size=6),
    extra=st.integers(1, 200),
)
def test_a_server_ignoring_max_tokens_is_stopped_after_its_first_overrun(
    budget: Budget, alloc: Allocation, actions: list[str], replies: list[str], extra: int
) -> None:
    llm = Overspending(Replies(replies, extra), extra)
    result, steps, web = _research(budget, alloc, actions, llm, "answer")
    assert sum(s.searches for s in steps) == len(web.queries) <= budget.searches
    if budget.fetches is not None:
        assert len(web.reads) <= budget.fetches
    if llm.calls:  # the first call overran: it was the only one, and the result says so
        assert len(llm.calls) == 1
        granted = llm.calls[0].params.n * llm.calls[0].params.max_tokens
        assert result.spend.tokens == granted + llm.calls[0].params.n * extra
        assert result.overrun["tokens"] >= llm.calls[0].params.n * extra
        assert result.forced is not None  # "tokens", or the step cap that had forced it already
        # nothing was searched or fetched after the overrun
        llm_step = next(i for i, s in enumerate(steps) if s.kind == "llm")
        assert all(s.kind == "llm" or i < llm_step for i, s in enumerate(steps))
    else:
        assert result.overrun == {}


def test_an_idle_think_turned_search_still_respects_the_step_cap() -> None:
    """Found by the property above: a think that changed nothing became a search after the step-cap check,
    so a report-mode run took one graph step more than its cap."""
    budget = Budget(tokens=48, searches=1, steps=9)
    alloc = Allocation(
        tokens=48,
        searches=1,
        shape="sequential",
        samples=1,
        difficulty=0.5,
        difficulty_uncertainty=0.5,
        think_tokens=1,
        reason="",
    )
    result, _, _ = _research(budget, alloc, ["think"], ScriptedLLM(Replies([""], 0)), "report")
    assert len(result.trace) <= budget.steps and result.answer
