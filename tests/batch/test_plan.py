"""Batch planning: shares that fit the total, ids stable across reruns, replicas by least load."""

from __future__ import annotations

import asyncio
from pathlib import Path

from leadline.batch.plan import BatchOptions, batch_id_for, fit_shares, parse_total_budget
from leadline.batch.routing import LeastLoadedLLM
from leadline.budgets.ledger import Budget
from leadline.config import Settings
from leadline.llm.base import GenerationParams, Message
from leadline.testing import ScriptedLLM


def test_shares_fit_the_total_and_keep_a_search_each() -> None:
    shares = fit_shares([(900, 0), (100, 6), (500, 3)], total_tokens=1000, total_searches=6)
    assert sum(t for t, _ in shares) <= 1000 and sum(s for _, s in shares) <= 6
    assert all(s >= 1 for _, s in shares) and shares[0][0] > shares[1][0]  # proportions kept above the floor
    starved = fit_shares([(100, 1)] * 3, total_tokens=300, total_searches=2)
    assert [s for _, s in starved] == [1, 1, 0]  # not enough for everyone: the first ones get the floor


def test_the_same_command_is_the_same_batch(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    options = BatchOptions(per_question=Budget(tokens=512, searches=3))
    a = batch_id_for(path, Settings(), options)
    assert a == batch_id_for(path, Settings(), BatchOptions(per_question=Budget(tokens=512, searches=3)))
    assert a != batch_id_for(path, Settings(model="other"), options)
    assert a != batch_id_for(path, Settings(), BatchOptions(per_question=Budget(tokens=256, searches=3)))
    assert a != batch_id_for(path, Settings(search_links=0), options)  # other links make another batch
    assert parse_total_budget("200_000, 600") == (200000, 600)


def test_a_batch_stores_its_links_only_when_it_has_some() -> None:
    from leadline.batch.plan import research_settings

    # none stored without links, so the ids of batches from before links hold (their workers read 0)
    assert "search_links" not in research_settings(Settings(search_links=0))
    assert research_settings(Settings())["search_links"] == 2  # the default is stored: workers read it


def test_calls_go_to_the_least_loaded_replica() -> None:
    class Slow(ScriptedLLM):
        async def chat(self, messages, params):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.05)
            return await super().chat(messages, params)

    replicas = [Slow(default="a"), Slow(default="b")]
    llm = LeastLoadedLLM(replicas)

    async def many() -> None:
        await asyncio.gather(*(llm.chat([Message("user", "hi")], GenerationParams()) for _ in range(6)))

    asyncio.run(many())
    assert [len(r.calls) for r in replicas] == [3, 3] and llm.in_flight == [0, 0]
