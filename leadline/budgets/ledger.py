"""Budget limits and the ledger that counts every spend against them.

A :class:`Budget` is a frozen value (what a run may spend); a :class:`Ledger` accumulates what it did
spend, call by call, and answers the named checks the boundary wrappers make before each call
(:meth:`Ledger.grant`, :meth:`Ledger.check_search`, :meth:`Ledger.check_fetch`). Limits are hard: a
call's samples times its ``max_tokens`` are clamped to what is left, a search or fetch cap refuses the
call past it, and what a backend spends past its grant anyway is kept as :attr:`Ledger.overrun` and
stops the run.

Tokens here are *generated* tokens (reasoning and answer). Reading costs prompt tokens, which the
ledger records too; the controller prices them through λ, the token-equivalent cost of one search.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from leadline.errors import BudgetExceededError, InvalidBudgetError
from leadline.storage.records import Spend as Spend  # the ledger's totals; re-exported here

SpendKind = Literal["llm", "search", "fetch"]
MIN_STEPS = 5
"""The shortest run in graph steps: assess, plan, decide, answer and (in report mode) report."""


def _check_limit(name: str, value: float | None, *, allow_zero: bool = False, whole: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBudgetError(f"budget {name} must be a number, got {value!r}")
    if whole and not isinstance(value, int):
        raise InvalidBudgetError(f"budget {name} must be a whole number, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidBudgetError(f"budget {name} must be finite, got {value!r}")
    if value < 0 and allow_zero:
        raise InvalidBudgetError(f"budget {name} must be zero or more, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidBudgetError(f"budget {name} must be positive, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one run may spend. ``tokens`` and ``searches`` are the two axes; the rest are optional caps."""

    tokens: int = 1024
    """Generated tokens (reasoning + answers) across all LLM calls of the run. The default is that of
    ``ask``, MCP and Studio, and the budget the shipped controllers' traces were recorded at."""
    searches: int = 4
    """Search calls."""
    thinks: int | None = None
    """Think steps (reasoning over the sources between searches); None: as many as the tokens allow, 0:
    answer straight from the sources. With ``searches`` it pins a run to a number of steps: one search and
    no think is the one-step fixed budget of a traces report."""
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
        _check_limit("thinks", self.thinks, allow_zero=True, whole=True)
        _check_limit("fetches", self.fetches, allow_zero=True)
        _check_limit("seconds", self.seconds)
        _check_limit("money", self.money)
        _check_limit("steps", self.steps)
        if self.steps < MIN_STEPS:
            raise InvalidBudgetError(
                f"budget steps must be at least {MIN_STEPS} (assess, plan, decide, answer, report), "
                f"got {self.steps!r}"
            )
        _check_limit("search_cost_tokens", self.search_cost_tokens, allow_zero=True)

    def to_dict(self) -> dict[str, Any]:
        """The budget as JSON-ready data (stored with each run). ``thinks`` is left out when unset, so a
        budget reads as it did before the cap existed (a batch's id hashes its per-question budget)."""
        data = asdict(self)
        if data["thinks"] is None:
            del data["thinks"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        """A budget from :meth:`to_dict` data; keys this version does not know are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LedgerEntry:
    """One spend: an LLM call, a search or a fetch, with what it cost."""

    kind: SpendKind
    node: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    seconds: float = 0.0
    money: float = 0.0
    detail: str = ""
    granted_tokens: int | None = None
    """The completion tokens the call was allowed (``n × max_tokens``); None when unknown."""

    @property
    def tokens_over_grant(self) -> int:
        """Completion tokens spent past the grant: a server that ignored ``max_tokens``, late usage."""
        if self.granted_tokens is None:
            return 0
        return max(0, self.completion_tokens - self.granted_tokens)


@dataclass(frozen=True)
class TokenGrant:
    """What one LLM call may generate: ``n`` samples of at most ``max_tokens`` each."""

    n: int
    max_tokens: int

    @property
    def total(self) -> int:
        """The most the call may spend in all: every engine applies ``max_tokens`` to each sample."""
        return self.n * self.max_tokens


@dataclass
class Ledger:
    """Thread-safe running totals of one run against its :class:`Budget`.

    Every limit is hard. Calls that can be clamped are clamped before they are made (:meth:`grant`);
    when a backend still spends more than it was granted, or a total passes a cap, the excess is kept
    as :attr:`overrun` and the ledger closes: every later check raises and :meth:`exhausted` names
    the limit, so the run stops at once with a forced answer.
    """

    budget: Budget
    entries: list[LedgerEntry] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _totals: Spend = field(default_factory=Spend)
    _over_grants: int = 0
    _over_seconds: float = 0.0

    # -- recording ---------------------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> None:
        """Charge one spend (the boundary wrappers call this once per recorded step)."""
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
            self._over_grants += entry.tokens_over_grant
            if self.budget.seconds is not None:  # a call that was still running at the deadline
                self._over_seconds = max(self._over_seconds, self.elapsed - self.budget.seconds)

    def restore(self, entries: list[LedgerEntry]) -> None:
        """Rebuild totals from recorded entries (a resumed run)."""
        for entry in entries:
            self.record(entry)

    # -- reading -----------------------------------------------------------------------------------
    @property
    def spend(self) -> Spend:
        """A copy of the totals, with the wall time since the ledger started."""
        with self._lock:
            s = replace(self._totals)  # its fields are numbers: a shallow copy is a full one
        s.seconds = self.elapsed
        return s

    @property
    def elapsed(self) -> float:
        """Seconds since the ledger started."""
        return time.monotonic() - self.started_at

    @property
    def overrun(self) -> dict[str, float]:
        """What was spent past a grant or a cap, by limit (``{"tokens": 37}``); empty when all held."""
        with self._lock:
            t = self._totals
            over: dict[str, float] = {}
            tokens = max(self._over_grants, t.completion_tokens - self.budget.tokens)
            if tokens > 0:
                over["tokens"] = tokens
            if t.searches > self.budget.searches:
                over["searches"] = t.searches - self.budget.searches
            if self.budget.fetches is not None and t.fetches > self.budget.fetches:
                over["fetches"] = t.fetches - self.budget.fetches
            if self.budget.money is not None and t.money > self.budget.money:
                over["money"] = t.money - self.budget.money
            if self._over_seconds > 0:
                over["seconds"] = round(self._over_seconds, 3)
            return over

    @property
    def tokens_left(self) -> int:
        """Generated tokens still allowed (0 once the ledger closed on an overrun)."""
        if self._over_grants > 0:
            return 0
        return max(0, self.budget.tokens - self._totals.completion_tokens)

    @property
    def searches_left(self) -> int:
        """Search calls still allowed."""
        return max(0, self.budget.searches - self._totals.searches)

    @property
    def fetches_left(self) -> int | None:
        """Page fetches still allowed, or None when fetches are not capped."""
        if self.budget.fetches is None:
            return None
        return max(0, self.budget.fetches - self._totals.fetches)

    def exhausted(self) -> str | None:
        """The name of the first hard limit that is used up (or overrun), or None."""
        over = self.overrun
        if over:
            return next(iter(over))
        if self.tokens_left <= 0:
            return "tokens"
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            return "seconds"
        if self.budget.money is not None and self._totals.money >= self.budget.money:
            return "money"
        return None

    # -- checks made at the boundary ---------------------------------------------------------------
    def _check_open(self) -> None:
        over = self.overrun
        if over:
            raise BudgetExceededError(f"{next(iter(over))} budget overrun: the run stops")
        if self.budget.seconds is not None and self.elapsed >= self.budget.seconds:
            raise BudgetExceededError("time budget used up")
        if self.budget.money is not None and self._totals.money >= self.budget.money:
            raise BudgetExceededError("money budget used up")

    def grant(self, max_tokens: int, *, n: int = 1, reserve: int = 0) -> TokenGrant:
        """The samples and per-sample ``max_tokens`` a call may use, so that ``n × max_tokens`` fits.

        What is left (less ``reserve``) is shared out by dropping samples first (each keeps the
        tokens it asked for) and cutting per-sample tokens only when one sample alone does not fit.
        Raises :class:`BudgetExceededError` when nothing is left.
        """
        self._check_open()
        left = self.tokens_left - reserve
        if left <= 0:
            raise BudgetExceededError("token budget used up")
        per_sample = max(1, min(max_tokens, left))
        samples = max(1, min(n, left // per_sample))
        return TokenGrant(n=samples, max_tokens=per_sample)

    def clamp_tokens(self, requested: int, *, reserve: int = 0) -> int:
        """The ``max_tokens`` one sample may use: ``requested`` cut to what is left (less ``reserve``).

        Raises :class:`BudgetExceededError` when nothing is left.
        """
        return self.grant(requested, n=1, reserve=reserve).max_tokens

    def check_search(self) -> None:
        """Raise :class:`BudgetExceededError` unless one more search is allowed."""
        self._check_open()
        if self.searches_left <= 0:
            raise BudgetExceededError("search budget used up")

    def check_fetch(self) -> None:
        """Raise :class:`BudgetExceededError` unless one more page fetch is allowed."""
        self._check_open()
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
