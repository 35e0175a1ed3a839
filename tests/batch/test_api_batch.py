"""`Researcher.abatch`: an async iterator of outcomes as they finish; `batch` keeps its list."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from leadline import BatchItem, Budget, Researcher, ResearchResult, Settings
from leadline.llm.base import GenerationParams, Message
from leadline.storage.store import SqlRunStore
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import sensible_reply

SLOW, FAST = "Which college did the slow author attend?", "Who wrote the fast book?"


def test_abatch_yields_each_outcome_as_it_finishes(docs: list[Document]) -> None:
    class SlowOnSlow(ScriptedLLM):
        async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Any:
            if "slow" in messages[-1].content:
                await asyncio.sleep(0.3)
            return await super().chat(messages, params)

    llm = SlowOnSlow(sensible_reply)
    r = Researcher(Settings(), llm=llm, search=FakeSearch(docs), store=MemoryRunStore())

    async def collect() -> list[BatchItem]:
        return [item async for item in r.abatch([SLOW, FAST], concurrency=2, per_question=Budget(tokens=400))]

    items = asyncio.run(collect())
    assert [(i.index, i.question) for i in items] == [(1, FAST), (0, SLOW)]  # finishing order
    assert all(i.ok for i in items)
    assert [type(x) for x in r.batch([SLOW, FAST], per_question=Budget(tokens=400))] == [ResearchResult] * 2


def test_a_total_budget_bounds_the_whole_batch(docs: list[Document]) -> None:
    r = Researcher(
        Settings(), llm=ScriptedLLM(sensible_reply), search=FakeSearch(docs), store=MemoryRunStore()
    )
    questions = [SLOW, FAST, "Where are cats found?"]
    for adaptive in (True, False):
        results = r.batch(questions, total_budget=Budget(tokens=600, searches=3), adaptive=adaptive)
        ok = [x for x in results if isinstance(x, ResearchResult)]
        assert len(ok) == 3
        assert sum(x.spend.searches for x in ok) <= 3 and sum(x.spend.tokens for x in ok) <= 600
    # a total smaller than one search per question: the last questions fail, the batch does not overspend
    results = r.batch(questions, total_budget=Budget(tokens=600, searches=2), adaptive=False)
    assert [type(x).__name__ for x in results].count("BudgetExceededError") == 1
    assert sum(x.spend.searches for x in results if isinstance(x, ResearchResult)) <= 2


@pytest.mark.postgres
def test_abatch_on_worker_processes(pg_url: str, fake_server: Any, corpus: str) -> None:
    settings = Settings(base_url=fake_server.url, corpus=corpus, db_url=pg_url)
    store = SqlRunStore.from_url(pg_url)
    questions = [f"What is topic {i} about?" for i in range(4)]

    async def collect() -> list[BatchItem]:
        async with Researcher(settings, store=store) as r:
            return [
                item
                async for item in r.abatch(
                    questions, executor="processes", workers=2, total_budget=Budget(tokens=1200, searches=8)
                )
            ]

    items = asyncio.run(collect())
    assert sorted(i.index for i in items) == [0, 1, 2, 3] and all(i.ok for i in items)
    results = [i.outcome for i in items if isinstance(i.outcome, ResearchResult)]
    assert sum(x.spend.tokens for x in results) <= 1200 and sum(x.spend.searches for x in results) <= 8
    assert all(x.citations and x.allocation for x in results)
    store.close()


def test_abatch_runs_at_once_on_one_sqlite_file(sqlite_url: str, docs: list[Document]) -> None:
    # The store's writes run off the event loop: a run waiting for SQLite's write lock no longer
    # blocks the loop that the checkpointer holding the lock needs to commit (a deadlock until the
    # busy timeout, before).
    class Slowish(ScriptedLLM):
        async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Any:
            await asyncio.sleep(0.01)
            return await super().chat(messages, params)

    store = SqlRunStore.from_url(sqlite_url)
    r = Researcher(
        Settings(db_url=sqlite_url), llm=Slowish(sensible_reply), search=FakeSearch(docs), store=store
    )
    questions = [SLOW, FAST, "Where are cats found?", "Who is Richard Dawkins?", "What is a gene?", "Cats?"]

    async def collect() -> list[BatchItem]:
        items = r.abatch(questions, concurrency=4, per_question=Budget(tokens=400, searches=2))
        return await asyncio.wait_for(_all(items), timeout=120)

    items = asyncio.run(collect())
    assert sorted(i.index for i in items) == list(range(len(questions)))
    assert all(i.ok for i in items), [i.outcome for i in items if not i.ok]
    for item in items:
        assert isinstance(item.outcome, ResearchResult)
        totals = store.ledger_totals(item.outcome.run_id)
        assert totals.completion_tokens == item.outcome.spend.tokens
        assert totals.searches == item.outcome.spend.searches
    store.close()


async def _all(items: Any) -> list[BatchItem]:
    return [item async for item in items]
