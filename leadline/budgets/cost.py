"""One unit for two axes: the token-equivalent price of a search call.

The controller trades reasoning tokens against search calls, so both must be priced in one unit:
``cost = tokens + λ·searches``. λ is the number of tokens the engine in use could have generated in the
wall time one search and its reads take (BATS 2025 prices tool calls the same way); it is configurable,
and :func:`measure_search_cost` / :func:`measure_engine_search_cost` measure it from a real engine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from leadline.budgets.ledger import Budget
from leadline.errors import InvalidBudgetError

if TYPE_CHECKING:
    from leadline.llm.base import LLMClient
    from leadline.tools.base import Reader, SearchBackend

DEFAULT_SEARCH_COST_TOKENS = 500.0
"""λ when nothing was measured: about what a small local model generates while a search and read run."""

FloatArray = npt.NDArray[np.float64]


def _finite_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBudgetError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise InvalidBudgetError(f"{name} must be finite and non-negative, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Prices tokens and searches in tokens; hard caps on fetches, seconds and money stay in Budget."""

    search_cost_tokens: float = DEFAULT_SEARCH_COST_TOKENS
    """λ: tokens one search call (with its reads) is worth."""

    def __post_init__(self) -> None:
        _finite_non_negative("search_cost_tokens", self.search_cost_tokens)

    @overload
    def cost(self, tokens: float, searches: float) -> float: ...
    @overload
    def cost(self, tokens: FloatArray, searches: FloatArray | float) -> FloatArray: ...
    def cost(self, tokens: Any, searches: Any) -> Any:
        """Token-equivalent cost of ``tokens`` generated tokens and ``searches`` search calls."""
        return tokens + self.search_cost_tokens * searches

    def budget_cost(self, budget: Budget) -> float:
        """The whole budget in token-equivalents."""
        return float(self.cost(budget.tokens, budget.searches))

    @classmethod
    def for_budget(cls, budget: Budget, *, measured: float | None = None) -> CostModel:
        """λ from the budget if it names one, else the measured value, else the default."""
        if budget.search_cost_tokens is not None:
            return cls(search_cost_tokens=float(budget.search_cost_tokens))
        if measured is not None:
            return cls(search_cost_tokens=_finite_non_negative("measured λ", measured))
        return cls()


def measure_search_cost(
    *, tokens_per_second: float, search_seconds: float, read_seconds: float = 0.0
) -> float:
    """λ from timings: the tokens the model generates in the wall time of one search and its reads."""
    rate = _finite_non_negative("tokens_per_second", tokens_per_second)
    seconds = _finite_non_negative("search_seconds", search_seconds) + _finite_non_negative(
        "read_seconds", read_seconds
    )
    return rate * seconds


async def measure_engine_search_cost(
    llm: LLMClient,
    search: SearchBackend,
    *,
    reader: Reader | None = None,
    query: str = "history of the printing press",
    sample_tokens: int = 48,
    k: int = 5,
) -> float:
    """Measure λ on the engine in use: one short generation for the token rate, one search (and reads)."""
    from leadline.llm.base import GenerationParams, Message

    started = time.perf_counter()
    completion = await llm.chat(
        [Message("user", "Write one sentence about libraries.")],
        GenerationParams(max_tokens=sample_tokens, temperature=0.0),
    )
    gen_seconds = max(time.perf_counter() - started, 1e-6)
    generated = completion.usage.completion_tokens or llm.count_tokens(completion.text)
    tokens_per_second = max(generated, 1) / gen_seconds

    started = time.perf_counter()
    results = await search.search(query, k=k)
    search_seconds = time.perf_counter() - started
    read_seconds = 0.0
    if reader is not None and results:
        started = time.perf_counter()
        for result in results[:2]:
            await reader.read(result)
        read_seconds = time.perf_counter() - started
    return measure_search_cost(
        tokens_per_second=tokens_per_second, search_seconds=search_seconds, read_seconds=read_seconds
    )
