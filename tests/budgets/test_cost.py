import asyncio
import math
import time

import pytest

from leadline.budgets.cost import CostModel, measure_engine_search_cost, measure_search_cost
from leadline.budgets.ledger import Budget
from leadline.errors import InvalidBudgetError
from leadline.llm.base import Completion, Usage
from leadline.tools.base import Document, SearchResult


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


class _Clock:
    """A perf_counter the fakes advance by exactly the seconds they "take" (no real timing noise)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _SlowSearch:
    name = "slow"

    def __init__(self, clock: _Clock, seconds: float = 0.05, read_seconds: float = 0.02) -> None:
        self.clock = clock
        self.seconds = seconds
        self.read_seconds = read_seconds
        self.reads = 0

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        self.clock.now += self.seconds
        return [SearchResult(doc_id=f"d{i}", title="t", snippet="s") for i in range(3)]

    async def read(self, result: SearchResult) -> Document:
        self.clock.now += self.read_seconds
        self.reads += 1
        return Document(doc_id=result.doc_id, title="t", text="x")

    async def aclose(self) -> None:
        return None


class _FastLLM:
    model_name = "fake"

    def __init__(self, clock: _Clock, seconds: float = 0.01, tokens: int = 20) -> None:
        self.clock = clock
        self.seconds = seconds
        self.tokens = tokens

    async def chat(self, messages, params):  # type: ignore[no-untyped-def]
        self.clock.now += self.seconds
        return Completion(choices=(), usage=Usage(prompt_tokens=5, completion_tokens=self.tokens))

    async def complete(self, prompt, params):  # type: ignore[no-untyped-def]
        return await self.chat([], params)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def aclose(self) -> None:
        return None


def test_measure_engine_search_cost_times_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    lam = asyncio.run(measure_engine_search_cost(_FastLLM(clock), _SlowSearch(clock)))
    # 20 tokens in 0.01 s is 2000 tok/s; a 0.05 s search is then worth 100 tokens
    assert lam == pytest.approx(100.0, rel=1e-6)
    # twice the decode speed doubles λ; the reads (two of them) add their time
    search = _SlowSearch(clock)
    lam = asyncio.run(measure_engine_search_cost(_FastLLM(clock, seconds=0.005), search, reader=search))
    assert search.reads == 2
    assert lam == pytest.approx(4000.0 * (0.05 + 2 * 0.02), rel=1e-6)
