"""The fallback chain and the per-provider rate limiter."""

from __future__ import annotations

import asyncio

import pytest

from leadline.errors import ConfigError, SearchError
from leadline.testing import FakeSearch
from leadline.tools.base import Document, SearchResult
from leadline.tools.fallback import FallbackSearch, RateLimiter

from .conftest import run


class Failing:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        self.calls += 1
        raise SearchError(f"{self.name} is down")

    async def aclose(self) -> None:
        return None


def docs(name: str) -> FakeSearch:
    return FakeSearch(
        documents=[
            Document(doc_id=f"{name}-1", title="vacuum", text="vacuum reclaims storage", url="https://x/1")
        ],
        name=name,
    )


def test_first_working_backend_answers() -> None:
    down = Failing("tavily")
    chain = FallbackSearch([down, docs("brave"), docs("exa")], rate_limits={})
    results = run(chain.search("vacuum"))
    assert [r.backend for r in results] == ["brave"] and down.calls == 1
    assert chain.failures == [("tavily", "tavily is down")] and chain.name == "tavily>brave>exa"


def test_empty_answers_fall_through_unless_told_not_to() -> None:
    empty, full = FakeSearch(documents=[], name="brave"), docs("exa")
    assert [r.backend for r in run(FallbackSearch([empty, full], rate_limits={}).search("vacuum"))] == ["exa"]
    strict = FallbackSearch(
        [FakeSearch(documents=[], name="brave"), docs("exa")], rate_limits={}, fall_through_on_empty=False
    )
    assert run(strict.search("vacuum")) == []


def test_all_failing_is_one_search_error_naming_each() -> None:
    with pytest.raises(SearchError) as caught:
        run(FallbackSearch([Failing("tavily"), Failing("brave")], rate_limits={}).search("q"))
    assert "tavily is down" in str(caught.value) and "brave is down" in str(caught.value)
    with pytest.raises(ConfigError):
        FallbackSearch([])


def test_rate_limiter_spaces_calls_on_a_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, burst=2, clock=lambda: now[0], sleep=sleep)

    async def go() -> None:
        for _ in range(5):
            await limiter.acquire()

    run(go())
    assert slept == pytest.approx([0.5, 0.5, 0.5])  # two from the burst, then one every 0.5 s
    now[0] += 10  # idle time refills only up to the burst
    run(go())
    assert slept[3:] == pytest.approx([0.5, 0.5, 0.5])


def test_chain_applies_each_providers_limit() -> None:
    async def go() -> float:
        chain = FallbackSearch([docs("brave")], rate_limits={"brave": 10.0})
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(4):
            await chain.search("vacuum")
        return loop.time() - started

    assert run(go()) >= 0.28  # 10/s with burst 1: calls 2-4 wait 0.1 s each
    with pytest.raises(ConfigError):
        RateLimiter(0)
