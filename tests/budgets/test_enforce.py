"""The hard caps, tested where they are enforced: the Ledger, BudgetedLLM, BudgetedSearch and the fetch cap.

A call past a cap must raise *before* it reaches the backend, so every test keeps a handle on its fake
backend and counts what the backend really saw, not only what the ledger says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from leadline import Budget, Researcher, Settings
from leadline.budgets.controller import Allocation, FixedController
from leadline.budgets.enforce import BudgetedLLM, BudgetedSearch, entry_for_step, steps_by_key
from leadline.budgets.ledger import Ledger, LedgerEntry
from leadline.errors import BudgetExceededError, FetchError
from leadline.llm.base import Choice, Completion, GenerationParams, Message, Usage
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document, SearchResult

MESSAGES = [Message("user", "hello")]


class Overspender:
    """A server that ignores ``max_tokens``: every sample is ``per_sample`` tokens long."""

    model_name = "overspender"

    def __init__(self, per_sample: int, text: str = '{"answer": "x", "sources": [1]}') -> None:
        self.per_sample = per_sample
        self.text = text
        self.calls: list[GenerationParams] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        self.calls.append(params)
        n = max(1, params.n)
        return Completion(
            choices=tuple(Choice(text=self.text, finish_reason="length") for _ in range(n)),
            usage=Usage(10, self.per_sample * n),
        )

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        return await self.chat([Message("user", prompt)], params)

    async def aclose(self) -> None:
        return None


class WebSearch:
    """Web-like results (no passage text), so every read is a charged fetch; counts what it served."""

    name = "web"

    def __init__(self, pages: int = 6, *, fail: bool = False) -> None:
        self.pages = pages
        self.fail = fail
        self.queries: list[str] = []
        self.reads: list[str] = []

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        self.queries.append(query)
        start = len(self.queries) * 10
        return [
            SearchResult(
                doc_id=f"http://site.test/{start + i}",
                title=f"Page {start + i} about {query}",
                snippet="snippet",
                url=f"http://site.test/{start + i}",
                rank=i + 1,
                backend=self.name,
            )
            for i in range(min(k, self.pages))
        ]

    async def read(self, result: SearchResult) -> Document:
        self.reads.append(result.url)
        if self.fail:
            raise FetchError("connection reset", url=result.url, reason="network")
        return Document(
            doc_id=result.doc_id, title=result.title, text=f"text of {result.url}", url=result.url
        )

    async def aclose(self) -> None:
        return None


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def budgeted_llm(llm: object, budget: Budget) -> tuple[BudgetedLLM, Ledger, MemoryRunStore]:
    ledger = Ledger(budget)
    store = MemoryRunStore()
    return BudgetedLLM(llm, ledger, store, "r1"), ledger, store  # type: ignore[arg-type]


# -- the example, first as the failing test it was ---------------------------------------------


class Parallel(FixedController):
    def __init__(self, samples: int) -> None:
        super().__init__()
        self.samples = samples

    def assess(self, question: str, budget: Budget) -> Allocation:
        return Allocation(
            tokens=budget.tokens, searches=budget.searches, shape="parallel", samples=self.samples
        )


def test_parallel_samples_never_spend_more_than_is_left() -> None:
    # Before the fix: 5 samples x max_tokens clamped once to what was left -> spend.tokens == 600.
    docs = [Document(doc_id="d1", title="Alpha", text="alpha beta gamma delta")]
    llm = ScriptedLLM(default="word " * 500)
    r = Researcher(
        Settings(), llm=llm, search=FakeSearch(docs), store=MemoryRunStore(), controller=Parallel(5)
    )
    result = r.research("alpha beta?", budget=Budget(tokens=120, searches=2))
    assert result.spend.tokens <= 120
    assert result.overrun == {}
    answer_calls = [c for c in llm.calls if c.params.temperature > 0 or c.params.n > 1]
    assert answer_calls, "the parallel answer call was made"
    for call in llm.calls:
        assert call.params.n * call.params.max_tokens <= 120


# -- Ledger -----------------------------------------------------------------------------------------


def test_grant_drops_samples_before_cutting_their_tokens() -> None:
    ledger = Ledger(Budget(tokens=120))
    grant = ledger.grant(48, n=5)
    assert (grant.n, grant.max_tokens) == (2, 48)
    assert grant.total <= 120
    ledger.record(LedgerEntry(kind="llm", node="x", completion_tokens=100, granted_tokens=100))
    grant = ledger.grant(48, n=5)  # 20 left: one sample, cut to 20
    assert (grant.n, grant.max_tokens) == (1, 20)


def test_grant_keeps_the_reserve_back_and_refuses_when_nothing_is_left() -> None:
    ledger = Ledger(Budget(tokens=100))
    assert ledger.grant(500, reserve=40).max_tokens == 60
    with pytest.raises(BudgetExceededError):
        ledger.grant(10, reserve=100)
    ledger.record(LedgerEntry(kind="llm", node="x", completion_tokens=100))
    with pytest.raises(BudgetExceededError):
        ledger.clamp_tokens(1)
    assert ledger.exhausted() == "tokens"


def test_search_and_fetch_caps_refuse_the_call_past_them() -> None:
    ledger = Ledger(Budget(searches=2, fetches=1))
    ledger.check_search()
    ledger.record(LedgerEntry(kind="search", node="s", searches=2))
    with pytest.raises(BudgetExceededError, match="search"):
        ledger.check_search()
    ledger.check_fetch()
    ledger.record(LedgerEntry(kind="fetch", node="r", fetches=1))
    with pytest.raises(BudgetExceededError, match="fetch"):
        ledger.check_fetch()
    assert ledger.overrun == {}


def test_a_spend_past_its_grant_is_an_overrun_that_closes_the_ledger() -> None:
    ledger = Ledger(Budget(tokens=1000, searches=3))
    ledger.record(LedgerEntry(kind="llm", node="think", completion_tokens=90, granted_tokens=50))
    assert ledger.overrun == {"tokens": 40}
    assert ledger.tokens_left == 0
    assert ledger.exhausted() == "tokens"
    for check in (ledger.check_search, ledger.check_fetch, lambda: ledger.grant(10)):
        with pytest.raises(BudgetExceededError, match="overrun"):
            check()


def test_a_total_past_the_cap_is_an_overrun_even_without_a_grant() -> None:
    ledger = Ledger(Budget(tokens=100, searches=1, fetches=0, money=1.0))
    ledger.record(LedgerEntry(kind="llm", node="x", completion_tokens=130, money=1.5))
    ledger.record(LedgerEntry(kind="search", node="s", searches=2))
    ledger.record(LedgerEntry(kind="fetch", node="r", fetches=1))
    assert ledger.overrun == {"tokens": 30, "searches": 1, "fetches": 1, "money": 0.5}


def test_restore_rebuilds_totals_and_overrun_from_recorded_steps() -> None:
    llm = Overspender(per_sample=80)
    wrapped, ledger, store = budgeted_llm(llm, Budget(tokens=500))
    run(wrapped.chat("000:think:0", "think", MESSAGES, GenerationParams(max_tokens=30)))
    again = Ledger(Budget(tokens=500))
    again.restore([entry_for_step(s) for s in store.list_steps("r1")])
    assert again.spend.completion_tokens == ledger.spend.completion_tokens == 80
    assert again.overrun == ledger.overrun == {"tokens": 50}


def test_time_and_money_caps_refuse_calls() -> None:
    ledger = Ledger(Budget(seconds=1.0))
    ledger.started_at -= 5
    with pytest.raises(BudgetExceededError, match="time"):
        ledger.grant(10)
    with pytest.raises(BudgetExceededError, match="time"):
        ledger.check_search()
    assert ledger.exhausted() == "seconds"
    ledger = Ledger(Budget(money=0.5))
    ledger.record(LedgerEntry(kind="llm", node="x", money=0.5))
    with pytest.raises(BudgetExceededError, match="money"):
        ledger.check_fetch()


# -- BudgetedLLM ------------------------------------------------------------------------------------


def test_llm_call_past_the_token_cap_raises_without_touching_the_backend() -> None:
    llm = ScriptedLLM(default="ok")
    wrapped, ledger, _ = budgeted_llm(llm, Budget(tokens=50))
    ledger.record(LedgerEntry(kind="llm", node="x", completion_tokens=50))
    with pytest.raises(BudgetExceededError):
        run(wrapped.chat("001:think:0", "think", MESSAGES, GenerationParams(max_tokens=10)))
    assert llm.calls == []


def test_llm_call_gets_samples_and_tokens_that_fit_together() -> None:
    llm = ScriptedLLM(default="word " * 100)
    wrapped, ledger, store = budgeted_llm(llm, Budget(tokens=100))
    completion = run(wrapped.chat("000:answer:0", "answer", MESSAGES, GenerationParams(max_tokens=48, n=5)))
    (call,) = llm.calls
    assert (call.params.n, call.params.max_tokens) == (2, 48)
    assert len(completion.choices) == 2
    assert ledger.spend.completion_tokens == 96
    (step,) = store.list_steps("r1")
    assert (step.request["n"], step.request["max_tokens"]) == (2, 48)


def test_thinking_budget_is_cut_to_the_granted_tokens() -> None:
    llm = ScriptedLLM(default="ok")
    wrapped, _, _ = budgeted_llm(llm, Budget(tokens=40))
    params = GenerationParams(max_tokens=400, thinking_token_budget=300)
    run(wrapped.chat("000:think:0", "think", MESSAGES, params))
    assert llm.calls[0].params.max_tokens == 40
    assert llm.calls[0].params.thinking_token_budget == 40


def test_a_server_that_ignores_max_tokens_is_charged_recorded_as_overrun_and_stopped() -> None:
    llm = Overspender(per_sample=90)
    wrapped, ledger, store = budgeted_llm(llm, Budget(tokens=1000))
    run(wrapped.chat("000:think:0", "think", MESSAGES, GenerationParams(max_tokens=30, n=2)))
    assert ledger.spend.completion_tokens == 180  # charged what it really spent
    assert ledger.overrun == {"tokens": 120}
    (step,) = store.list_steps("r1")
    assert step.completion_tokens == 180
    with pytest.raises(BudgetExceededError, match="overrun"):
        run(wrapped.chat("001:think:0", "think", MESSAGES, GenerationParams(max_tokens=30)))
    assert len(llm.calls) == 1  # the call after the overrun never reached the server


def test_a_recorded_call_is_replayed_not_spent_again() -> None:
    llm = ScriptedLLM(default="hello there")
    wrapped, ledger, store = budgeted_llm(llm, Budget(tokens=100))
    first = run(wrapped.chat("000:think:0", "think", MESSAGES, GenerationParams(max_tokens=10)))
    replayed = BudgetedLLM(ScriptedLLM([]), Ledger(Budget(tokens=100)), store, "r1")
    again = run(replayed.chat("000:think:0", "think", MESSAGES, GenerationParams(max_tokens=10)))
    assert again.text == first.text
    assert len(llm.calls) == 1 and replayed.ledger.spend.completion_tokens == 0
    assert ledger.spend.completion_tokens == 2  # the first call was charged once


# -- BudgetedSearch and the fetch cap ------------------------------------------------------------------


def test_search_past_the_cap_raises_without_touching_the_backend() -> None:
    web = WebSearch()
    ledger = Ledger(Budget(searches=1))
    search = BudgetedSearch(web, web, ledger, MemoryRunStore(), "r1")
    results = run(search.search("000:search:0", "search", "q1"))
    assert results and ledger.spend.searches == 1
    with pytest.raises(BudgetExceededError, match="search"):
        run(search.search("001:search:0", "search", "q2"))
    assert web.queries == ["q1"]


def test_fetch_past_the_cap_raises_without_touching_the_reader() -> None:
    web = WebSearch()
    ledger = Ledger(Budget(searches=2, fetches=2))
    search = BudgetedSearch(web, web, ledger, MemoryRunStore(), "r1")
    results = run(search.search("000:search:0", "search", "q"))
    for i in range(2):
        run(search.read(f"001:read:{i}", "read", results[i]))
    with pytest.raises(BudgetExceededError, match="fetch"):
        run(search.read("001:read:2", "read", results[2]))
    assert web.reads == [results[0].url, results[1].url]
    assert ledger.spend.fetches == 2


def test_a_failed_fetch_is_charged_and_replayed_as_the_same_failure() -> None:
    web = WebSearch(fail=True)
    store = MemoryRunStore()
    ledger = Ledger(Budget(fetches=3))
    search = BudgetedSearch(web, web, ledger, store, "r1")
    result = run(search.search("000:search:0", "search", "q"))[0]
    with pytest.raises(FetchError):
        run(search.read("001:read:0", "read", result))
    assert ledger.spend.fetches == 1
    fresh = WebSearch()
    replay = BudgetedSearch(fresh, fresh, Ledger(Budget(fetches=3)), store, "r1")
    with pytest.raises(FetchError, match="connection reset"):
        run(replay.read("001:read:0", "read", result))
    assert fresh.reads == []


def test_local_passages_are_free_reads() -> None:
    docs = [Document(doc_id="d1", title="Alpha", text="alpha beta")]
    fake = FakeSearch(docs)
    ledger = Ledger(Budget(fetches=0))
    search = BudgetedSearch(fake, fake, ledger, MemoryRunStore(), "r1")
    (result,) = run(search.search("000:search:0", "search", "alpha"))
    doc = run(search.read("001:read:0", "read", result))
    assert doc.text == "alpha beta" and ledger.spend.fetches == 0


# -- the loop stops at once on an overrun ----------------------------------------------------------------


def test_an_overrun_in_the_loop_stops_the_run_forced_and_the_result_says_so() -> None:
    docs = [Document(doc_id="d1", title="Alpha", text="alpha beta gamma")]
    llm = Overspender(per_sample=400, text=json.dumps({"queries": ["alpha"]}))
    r = Researcher(Settings(), llm=llm, search=FakeSearch(docs), store=MemoryRunStore())
    result = r.research("alpha beta?", budget=Budget(tokens=1000, searches=4))
    assert result.forced == "tokens"
    assert result.overrun["tokens"] > 0
    assert len(llm.calls) == 1  # the plan call overran: no LLM call after it
    assert result.spend.searches == 0  # nor any search: the run stopped at once
    assert result.answer
    assert result.to_dict()["overrun"] == result.overrun
    record = r.store.get_run(result.run_id)  # the run record's spend keeps it too
    assert record.spend["overrun"] == result.overrun
    assert r.resume(result.run_id).overrun == result.overrun  # and a finished run handed back again


def test_a_call_recorded_before_the_run_started_is_replayed_from_what_the_run_read_once() -> None:
    store, ledger = MemoryRunStore(), Ledger(Budget(tokens=500))
    run_id = store.create_run(question="q", mode="answer", model="m", budget={}, settings={})
    first = BudgetedLLM(Overspender(per_sample=5, text="recorded"), ledger, store, run_id)
    asyncio.run(first.chat("001:plan:0", "plan", [Message("user", "hi")], GenerationParams(max_tokens=50)))
    recorded = steps_by_key(store.list_steps(run_id))
    llm = Overspender(per_sample=5, text="new")
    again = BudgetedLLM(llm, Ledger(Budget(tokens=500)), store, run_id, recorded=recorded)
    replay = asyncio.run(
        again.chat("001:plan:0", "plan", [Message("user", "hi")], GenerationParams(max_tokens=50))
    )
    assert replay.text == "recorded" and llm.calls == []
    made = asyncio.run(
        again.chat("002:plan:0", "plan", [Message("user", "hi")], GenerationParams(max_tokens=50))
    )
    assert made.text == "new" and len(llm.calls) == 1 and "002:plan:0" in recorded  # remembered


# -- one type per record ----------------------------------------------------------------------------


def test_a_search_result_round_trips_through_its_json_form() -> None:
    result = SearchResult(
        doc_id="u", title="t", snippet="s", url="http://x/", score=1.5, rank=2, backend="b", raw={"k": 1}
    )
    data = result.to_dict()
    assert "raw" not in data and json.loads(json.dumps(data)) == data
    assert SearchResult.from_dict({**data, "query": "q"}) == result


def test_a_recorded_completion_keeps_its_token_texts_and_log_probabilities() -> None:
    from leadline.budgets.enforce import _completion_from_dict, _completion_to_dict

    choice = Choice(text='{"answer": "x"}', logprobs=(-0.1, -2.0), tokens=('{"answer": "', 'x"}'))
    completion = Completion(choices=(choice, Choice(text="y")), usage=Usage(3, 2), model="m")
    data = json.loads(json.dumps(_completion_to_dict(completion)))
    again = _completion_from_dict(data)
    assert again == completion and again.choices[0].field_logprob("answer") == pytest.approx(-2.0)


def test_spend_is_one_type_for_the_ledger_the_store_and_the_result() -> None:
    from leadline.storage.records import LedgerTotals, Spend
    from leadline.storage.store import SqlRunStore

    assert LedgerTotals is Spend
    ledger = Ledger(Budget())
    assert type(ledger.spend) is Spend
    with SqlRunStore.from_url("sqlite://") as store:
        run_id = store.create_run(question="q", mode="answer", model="m", budget={}, settings={})
        assert type(store.ledger_totals(run_id)) is Spend
    assert Spend(completion_tokens=7).to_dict()["tokens"] == 7


def test_a_call_that_ends_past_the_time_limit_is_a_seconds_overrun() -> None:
    ledger = Ledger(Budget(seconds=10.0))
    ledger.record(LedgerEntry(kind="search", node="s", searches=1))
    assert ledger.overrun == {}
    ledger.started_at -= 12.5  # the next call came back 2.5 s after the deadline
    ledger.record(LedgerEntry(kind="llm", node="think", completion_tokens=5))
    assert ledger.overrun["seconds"] == pytest.approx(2.5, abs=0.1)
    assert ledger.exhausted() == "seconds"
    with pytest.raises(BudgetExceededError, match="seconds budget overrun"):
        ledger.check_search()


def test_a_slow_call_past_the_time_limit_stops_the_run_forced_by_seconds() -> None:
    class Slow(ScriptedLLM):
        async def chat(self, messages, params):  # type: ignore[no-untyped-def]
            await asyncio.sleep(2.5)
            return await super().chat(messages, params)

    docs = [Document(doc_id="d1", title="Alpha", text="alpha beta gamma")]
    llm = Slow(default=json.dumps({"queries": ["alpha"]}))
    r = Researcher(Settings(), llm=llm, search=FakeSearch(docs), store=MemoryRunStore())
    result = r.research("alpha beta?", budget=Budget(tokens=1000, searches=4, seconds=2.0))
    assert result.forced == "seconds"
    assert result.overrun["seconds"] > 0
    assert len(llm.calls) == 1 and result.spend.searches == 0  # nothing after the call that ran over
