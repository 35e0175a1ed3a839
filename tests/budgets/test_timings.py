"""λ from the engine in use, with the prefill a search causes (leadline.budgets.timings)."""

import pytest

from leadline.budgets.ledger import LedgerEntry
from leadline.budgets.timings import EngineTimings

PREFILL, DECODE = 1 / 200.0, 1 / 40.0  # seconds per token: an engine that reads 200 and writes 40 tok/s


def _run(
    searches: int, *, base_prompt: int = 300, per_search: int = 400, overhead: float = 0.0
) -> list[LedgerEntry]:
    """A run whose prompts grow by ``per_search`` tokens for every search it made."""
    entries: list[LedgerEntry] = []
    for i in range(searches):
        entries.append(LedgerEntry(kind="search", node="search", searches=1, seconds=0.005))
        entries.append(LedgerEntry(kind="fetch", node="read", fetches=1, seconds=0.02))
        entries.append(
            LedgerEntry(
                kind="llm",
                node="plan",
                prompt_tokens=50 + i,
                completion_tokens=10,
                seconds=overhead + (50 + i) * PREFILL + 10 * DECODE,
            )
        )
    prompt = base_prompt + per_search * searches - sum(50 + i for i in range(searches))
    entries.append(
        LedgerEntry(
            kind="llm",
            node="answer",
            prompt_tokens=prompt,
            completion_tokens=30,
            seconds=overhead + prompt * PREFILL + 30 * DECODE,
        )
    )
    return entries


def test_price_counts_the_prefill_a_search_causes() -> None:
    timings = EngineTimings()
    assert timings.price() is None
    for searches in (1, 2, 3, 4):
        timings.add(_run(searches))
    price = timings.price()
    assert price is not None
    assert price.decode_tokens_per_second == pytest.approx(40.0, rel=1e-6)
    assert price.prompt_tokens_per_search == pytest.approx(400.0, rel=1e-6)
    assert price.prefill_seconds == pytest.approx(400 * PREFILL, rel=1e-6)
    expected = 40.0 * (0.005 + 0.02 + 400 * PREFILL)
    assert price.tokens == pytest.approx(expected, rel=1e-6)
    assert timings.search_cost() == pytest.approx(expected, rel=1e-6)
    assert price.prefill_tokens_per_second == pytest.approx(200.0, rel=1e-6)
    # Without the prefill term a local search (5 ms call, 20 ms read) is priced at about a token.
    assert price.call_only_tokens < 1.0 < 50 * price.call_only_tokens < price.tokens


def test_one_search_count_gives_no_prefill_term_yet() -> None:
    timings = EngineTimings()
    timings.add(_run(2))
    timings.add(_run(2))
    price = timings.price()
    assert price is not None and price.prompt_tokens_per_search is None
    assert price.prefill_seconds == 0.0
    assert price.tokens == pytest.approx(40.0 * 0.025, rel=1e-6)


def test_too_few_calls_fall_back_to_the_blended_rate() -> None:
    timings = EngineTimings()
    timings.add(
        [
            LedgerEntry(kind="search", node="search", searches=1, seconds=1.0),
            LedgerEntry(kind="llm", node="answer", prompt_tokens=100, completion_tokens=20, seconds=2.0),
        ]
    )
    assert timings.search_cost() == pytest.approx(10.0)  # 20 tokens / 2 s over 1 s of search


def test_runs_without_searches_or_generation_price_nothing() -> None:
    timings = EngineTimings()
    timings.add([LedgerEntry(kind="llm", node="answer", prompt_tokens=10, completion_tokens=5, seconds=1.0)])
    assert timings.price() is None


def test_a_per_call_overhead_is_not_read_as_decode_time() -> None:
    timings = EngineTimings()
    for searches in (1, 2, 3, 4):
        timings.add(_run(searches, overhead=0.3))
    price = timings.price()
    assert price is not None
    assert price.decode_tokens_per_second == pytest.approx(40.0, rel=1e-3)
    assert price.prefill_tokens_per_second == pytest.approx(200.0, rel=1e-3)
