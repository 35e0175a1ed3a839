"""Budget limits and the ledger that counts every spend against them.

A :class:`Budget` is a frozen value (what a run may spend); a :class:`Ledger` accumulates what it did
spend, call by call, and answers the named checks the boundary wrappers make before each call
(:meth:`Ledger.clamp_tokens`, :meth:`Ledger.check_search`). Limits are hard: a token cap is never
exceeded (``max_tokens`` is clamped to what is left), a search cap refuses the call past it.

Tokens here are *generated* tokens (reasoning and answer). Reading costs prompt tokens, which the
ledger records too; the controller prices them through λ, the token-equivalent cost of one search.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from leadline.errors import BudgetExceededError, InvalidBudgetError

SpendKind = Literal["llm", "search", "fetch"]


def _check_limit(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBudgetError(f"budget {name} must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidBudgetError(f"budget {name} must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidBudgetError(f"budget {name} must be positive, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one run may spend. ``tokens`` and ``searches`` are the two axes; the rest are optional caps."""

    tokens: int = 2048
    """Generated tokens (reasoning + answers) across all LLM calls of the run."""
    searches: int = 4
    """Search calls."""
    fetches: int | None = None
    """Page reads (fetches) on the web; local corpus reads are free."""
    seconds: float | None = None
    """Wall-clock seconds."""
    money: float | None = None
    """Currency units, for priced APIs (prices from the client)."""
    steps: int = 24
    """Graph steps, a guard against loops whatever the budget."""
    search_cost_tokens: float | None = None
    """λ: the token-equivalent cost of one search call; None means measured from the engine."""

    def __post_init__(self) -> None:
        _check_limit("tokens", self.tokens)
        _check_limit("searches", self.searches)
        _check_limit("fetches", self.fetches, allow_zero=True)
        _check_limit("seconds", self.seconds)
        _check_limit("money", self.money)
        _check_limit("steps", self.steps)
        _check_limit("search_cost_tokens", self.search_cost_tokens, allow_zero=True)

    def to_dict(self) -> dict[str, Any]:
        """The budget as JSON-ready data (stored with each run)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        """A budget from :meth:`to_dict` data; keys this version does not know are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LedgerEntry:
    """One spend: an LLM call, a search or a fetch, with the node that made it."""

    kind: SpendKind
    node: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    seconds: float = 0.0
    money: float = 0.0
    detail: str = ""


@dataclass
class Spend:
    """Totals of a ledger; also what a :class:`~leadline.ResearchResult` reports."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    llm_calls: int = 0
    seconds: float = 0.0
    money: float = 0.0

    @property
    def tokens(self) -> int:
        """Generated tokens, the token axis of the budget."""
        return self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        """The spend as JSON-ready data, with ``tokens`` (generated tokens) added."""
        data = asdict(self)
        data["tokens"] = self.tokens
        return data


@dataclass
class Ledger:
    """Thread-safe running totals of one run against its :class:`Budget`."""

    budget: Budget
    entries: list[LedgerEntry] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _totals: Spend = field(default_factory=Spend)

    # -- recording ---------------------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> None:
        """Add one spend to the totals (thread-safe)."""
        with self._lock:
            self.entries.append(entry)
            t = self._totals
            t.prompt_tokens += entry.prompt_tokens
            t.completion_tokens += entry.completion_tokens
            t.searches += entry.searches
            t.fetches += entry.fetches
            t.llm_calls += 1 if entry.kind == "llm" else 0
            t.seconds += entry.seconds
            t.money += entry.money

    def restore(self, entries: list[LedgerEntry]) -> None:
        """Rebuild totals from recorded entries (a resumed run)."""
        for entry in entries:
            self.record(entry)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def spend(self) -> Spend:
        """What the run has spent so far, wall time included."""
        with self._lock:
            s = Spend(**asdict(self._totals))
        s.seconds = self.elapsed
        return s

    @property
    def elapsed(self) -> float:
        """Seconds since the ledger started."""
        return time.monotonic() - self.started_at

    @property
    def tokens_left(self) -> int:
        """Generated tokens the budget still allows."""
        return max(0, self.budget.tokens - self._totals.completion_tokens)

    @property
    def searches_left(self) -> int:
        """Search calls the budget still allows."""
        return max(0, self.budget.searches - self._totals.searches)

    @property
    def fetches_left(self) -> int | None:
        """Fetches the budget still allows, or None when fetches are not capped."""
        if self.budget.fetches is None:
            return None
        return max(0, self.budget.fetches - self._totals.fetches)

    def exhausted(self) -> str | None:
        """The name of the first hard limit that is used up, or None."""
        if self.tokens_left <= 0:
            return "tokens"
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            return "seconds"
        if self.budget.money is not None and self._totals.money >= self.budget.money:
            return "money"
        return None

    # -- checks made at the boundary ---------------------------------------------------------------
    def clamp_tokens(self, requested: int, *, reserve: int = 0) -> int:
        """The ``max_tokens`` a call may use: ``requested`` cut to what is left (less ``reserve``).

        Raises :class:`BudgetExceededError` when nothing is left.
        """
        left = self.tokens_left - reserve
        if left <= 0:
            raise BudgetExceededError("token budget used up")
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            raise BudgetExceededError("time budget used up")
        return max(1, min(requested, left))

    def check_search(self) -> None:
        """Raise BudgetExceededError when no search (or no time) is left."""
        if self.searches_left <= 0:
            raise BudgetExceededError("search budget used up")
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            raise BudgetExceededError("time budget used up")

    def check_fetch(self) -> None:
        """Raise BudgetExceededError when the fetch cap (or the time) is used up."""
        left = self.fetches_left
        if left is not None and left <= 0:
            raise BudgetExceededError("fetch budget used up")

    def describe(self) -> str:
        """The remaining budget in words, as shown to the model (budget awareness)."""
        parts = [f"{self.tokens_left} tokens", f"{self.searches_left} searches"]
        if self.budget.seconds is not None:
            parts.append(f"{max(0.0, self.budget.seconds - self.elapsed):.0f} s")
        return "Budget left: " + ", ".join(parts) + "."


__all__ = ["Budget", "Ledger", "LedgerEntry", "Spend", "SpendKind"]
