"""λ measured from the engine in use: what earlier runs showed of its speed and of a search's price.

A search costs the wall time of the call and its page reads, and it also costs the model the time to
read what it brought: its passages are prefilled into the later prompts of the run. On a local corpus
the call takes milliseconds while the prefill takes seconds, so pricing only the call would make
searches look free. From the ledgers of earlier runs this module fits

* the engine's prefill and decode times per token (non-negative least squares over the LLM calls:
  ``seconds ≈ a·prompt_tokens + b·completion_tokens + c``, c a per-call constant), and
* the prompt tokens one more search adds to a run (the slope of a run's prompt tokens over its
  searches, across runs that searched different numbers of times),

and prices a search as the tokens the engine decodes in ``search + read + a·(prompt tokens it adds)``
seconds. With too little data for a fit it falls back to the blended rate (generated tokens over all LLM
seconds) times the search and read wall time.

A CLI call makes one run per process, so a new ``Researcher`` seeds its timings from the store's recent
finished runs on the same engine (:func:`earlier_ledgers`, read once in a worker thread) before its first
runs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from leadline.budgets.cost import measure_search_cost
from leadline.budgets.enforce import entry_for_ledger_row, entry_for_step
from leadline.budgets.ledger import LedgerEntry
from leadline.errors import LeadlineError
from leadline.storage.base import RunStore

MAX_CALLS = 2048
"""LLM calls kept for the rate fit (the most recent)."""
MAX_RUNS = 512
"""Runs kept for the prompt-tokens-per-search fit (the most recent)."""
SEED_RUNS = 20
"""Earlier runs on the same engine whose timings seed λ's measurement in a new Researcher."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchPrice:
    """How λ was measured: its parts in seconds and the engine rates behind them."""

    tokens: float
    """λ: tokens the engine decodes in the time of one search, its reads and the prefill it causes."""
    decode_tokens_per_second: float
    search_seconds: float
    read_seconds: float
    prefill_seconds: float
    """Prefill time of the prompt tokens one search adds to a run (0 when not yet measurable)."""
    prompt_tokens_per_search: float | None
    prefill_tokens_per_second: float | None
    """The engine's fitted prefill rate (None without a fit, or when prefill time was not separable)."""
    call_only_tokens: float
    """What the call and read time alone would price a search at (the blended rate, no prefill term)."""


@dataclass
class EngineTimings:
    """Timings of this engine's earlier runs, from their ledgers."""

    calls: deque[tuple[int, int, float]] = field(default_factory=lambda: deque(maxlen=MAX_CALLS))
    runs: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=MAX_RUNS))
    searches: int = 0
    search_seconds: float = 0.0
    read_seconds: float = 0.0
    _price: tuple[SearchPrice | None] | None = field(default=None, init=False, repr=False, compare=False)
    """The last :meth:`price`, until a run is added (every run of a batch asks; the fits cost ~1 ms)."""

    def add(self, entries: Iterable[LedgerEntry]) -> None:
        """Take one finished run's ledger entries."""
        self._price = None
        run_searches = run_prompt = 0
        for e in entries:
            if e.kind == "llm":
                self.calls.append((e.prompt_tokens, e.completion_tokens, e.seconds))
                run_prompt += e.prompt_tokens
            elif e.kind == "search":
                self.searches += e.searches
                self.search_seconds += e.seconds
                run_searches += e.searches
            else:
                self.read_seconds += e.seconds
        self.runs.append((run_searches, run_prompt))

    def token_seconds(self) -> tuple[float, float] | None:
        """(prefill, decode) seconds per token fitted on the LLM calls, or None without a usable fit."""
        rows = [(p, c, s) for p, c, s in self.calls if s > 0]
        if len(rows) < 4:
            return None
        data = np.array(rows, dtype=np.float64)
        # A per-call constant (scheduling, grammar set-up) is fitted too, so it is not read as decode time.
        design = np.column_stack([data[:, :2], np.ones(len(data))])
        a, b, _ = nnls(design, data[:, 2])[0]
        if b <= 0.0:
            return None
        return float(a), float(b)

    def prompt_tokens_per_search(self) -> float | None:
        """Slope of a run's prompt tokens over its searches (None without two distinct search counts)."""
        if len({s for s, _ in self.runs}) < 2:
            return None
        data = np.array(self.runs, dtype=np.float64)
        slope = float(np.polyfit(data[:, 0], data[:, 1], 1)[0])
        return max(slope, 0.0)

    def price(self) -> SearchPrice | None:
        """λ and its parts, or None before any run with an LLM call and a search."""
        if self._price is None:
            self._price = (self._measure(),)
        return self._price[0]

    def _measure(self) -> SearchPrice | None:
        generated = sum(c for _, c, _ in self.calls)
        llm_seconds = sum(s for _, _, s in self.calls)
        if self.searches <= 0 or generated <= 0 or llm_seconds <= 0:
            return None
        search_s = self.search_seconds / self.searches
        read_s = self.read_seconds / self.searches
        blended = generated / llm_seconds  # prefill time counted against generation
        call_only = measure_search_cost(
            tokens_per_second=blended, search_seconds=search_s, read_seconds=read_s
        )
        fitted = self.token_seconds()
        per_search = self.prompt_tokens_per_search()
        if fitted is None:
            return SearchPrice(call_only, blended, search_s, read_s, 0.0, per_search, None, call_only)
        prefill_per_token, decode_per_token = fitted
        prefill_s = prefill_per_token * per_search if per_search is not None else 0.0
        rate = 1.0 / decode_per_token
        tokens = measure_search_cost(
            tokens_per_second=rate, search_seconds=search_s, read_seconds=read_s + prefill_s
        )
        prefill_rate = 1.0 / prefill_per_token if prefill_per_token > 0 else None
        return SearchPrice(tokens, rate, search_s, read_s, prefill_s, per_search, prefill_rate, call_only)

    def search_cost(self) -> float | None:
        """λ in tokens per search call, or None before any run with an LLM call and a search."""
        price = self.price()
        return None if price is None else price.tokens


def engine_key(model: str, settings: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two runs' timings comparable: the model, the server, the search backend, the corpus."""
    return (model, *(settings.get(k) for k in ("base_url", "search", "searxng_url", "corpus")))


def earlier_ledgers(
    store: RunStore, key: tuple[Any, ...], *, limit: int = SEED_RUNS
) -> list[list[LedgerEntry]]:
    """The ledgers of the store's newest ``limit`` finished runs made on the engine ``key``.

    Runs count when they used the same model, server, search backend and corpus (:func:`engine_key`
    of the run's model and recorded settings). Blocking (it reads the store): an async caller runs it
    in a worker thread. An unreadable history costs only the measurement: it is logged, and there is
    none.
    """
    try:
        runs = store.list_runs(limit=10 * limit)
        same = [r for r in runs if r.status == "done" and engine_key(r.model, r.settings) == key]
        return [_ledger(store, run.run_id) for run in same[:limit]]
    except LeadlineError as exc:
        logger.warning("could not read earlier runs to measure λ: %s", exc)
        return []


def _ledger(store: RunStore, run_id: str) -> list[LedgerEntry]:
    """A run's spends: its ledger rows where the store has them (a SQL store: a few numbers a call),
    else rebuilt from its recorded steps (which carry every prompt and answer)."""
    rows = getattr(store, "ledger_entries", None)
    if rows is None:
        return [entry_for_step(s) for s in store.list_steps(run_id)]
    return [entry_for_ledger_row(r) for r in rows(run_id)]


__all__ = ["SEED_RUNS", "EngineTimings", "SearchPrice", "earlier_ledgers", "engine_key"]
