import asyncio
import math

import pytest

from leadline.budgets.cost import CostModel, measure_engine_search_cost, measure_search_cost
from leadline.budgets.ledger import Budget
from leadline.errors import InvalidBudgetError
from leadline.llm.base import Completion, Usage
from leadline.tools.base import SearchResult


def test_cost_prices_searches_in_tokens() -> None:
    model = CostModel(search_cost_tokens=300.0)
    assert model.cost(1000, 2) == 1600.0
    assert model.budget_cost(Budget(tokens=2048, searches=4)) == 2048 + 1200


def test_cost_model_uses_the_budget_lambda_first() -> None:
    assert CostModel.for_budget(Budget(search_cost_tokens=123.0), measured=999.0).search_cost_tokens == 123.0
    assert CostModel.for_budget(Budget(), measured=999.0).search_cost_tokens == 999.0
    assert CostModel.for_budget(Budget()).search_cost_tokens == 500.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_lambda_is_refused(bad: float) -> None:
    with pytest.raises(InvalidBudgetError):
        CostModel(search_cost_tokens=bad)


def test_measure_search_cost_is_rate_times_wall_time() -> None:
    assert measure_search_cost(tokens_per_second=40.0, search_seconds=2.0, read_seconds=0.5) == 100.0
    with pytest.raises(InvalidBudgetError):
        measure_search_cost(tokens_per_second=-1.0, search_seconds=1.0)


class _SlowSearch:
    name = "slow"

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        await asyncio.sleep(0.05)
        return [SearchResult(doc_id="d1", title="t", snippet="s")]

    async def aclose(self) -> None:
        return None


class _FastLLM:
    model_name = "fake"

    async def chat(self, messages, params):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        return Completion(choices=(), usage=Usage(prompt_tokens=5, completion_tokens=20))

    async def complete(self, prompt, params):  # type: ignore[no-untyped-def]
        return await self.chat([], params)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def aclose(self) -> None:
        return None


def test_measure_engine_search_cost_times_both_sides() -> None:
    lam = asyncio.run(measure_engine_search_cost(_FastLLM(), _SlowSearch()))
    # ~20 tokens in ~0.01 s is ~2000 tok/s; a 0.05 s search is then worth ~100 tokens (timing is loose).
    assert 20 < lam < 1000
