"""The batch pool: budget that runs of one batch return unspent, for the runs that still need it.

Runs of a batch start with their planned shares. A run that stops early (the controller saw that more
compute would not pay) deposits what it did not spend; a run that could still use more withdraws from
the pool. Many runs do this at once — in threads or as asyncio tasks of one event loop — so every
operation takes one lock, holds it for a few arithmetic steps and never awaits while holding it.
Consistency across processes (Ray workers) needs a shared store and is not this class's job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from leadline.errors import InvalidBudgetError


def _amount(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidBudgetError(f"pool {name} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class PoolSnapshot:
    """The pool's balance and what has flowed in and out of it, at one moment."""

    tokens: int
    searches: int
    deposited_tokens: int
    deposited_searches: int
    withdrawn_tokens: int
    withdrawn_searches: int


@dataclass
class BatchPool:
    """Thread-safe and asyncio-safe shared pool of tokens and searches."""

    tokens: int = 0
    searches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _deposited: list[int] = field(default_factory=lambda: [0, 0], repr=False)
    _withdrawn: list[int] = field(default_factory=lambda: [0, 0], repr=False)

    def __post_init__(self) -> None:
        _amount("tokens", self.tokens)
        _amount("searches", self.searches)

    def deposit(self, tokens: int = 0, searches: int = 0) -> None:
        """Return unspent budget to the pool."""
        _amount("tokens", tokens)
        _amount("searches", searches)
        with self._lock:
            self.tokens += tokens
            self.searches += searches
            self._deposited[0] += tokens
            self._deposited[1] += searches

    def withdraw(self, tokens: int = 0, searches: int = 0) -> tuple[int, int]:
        """Take up to the amounts asked for; returns what was granted (possibly less, never more)."""
        _amount("tokens", tokens)
        _amount("searches", searches)
        with self._lock:
            got_tokens = min(tokens, self.tokens)
            got_searches = min(searches, self.searches)
            self.tokens -= got_tokens
            self.searches -= got_searches
            self._withdrawn[0] += got_tokens
            self._withdrawn[1] += got_searches
        return got_tokens, got_searches

    async def adeposit(self, tokens: int = 0, searches: int = 0) -> None:
        """Async :meth:`deposit`."""
        self.deposit(tokens, searches)

    async def awithdraw(self, tokens: int = 0, searches: int = 0) -> tuple[int, int]:
        """Async :meth:`withdraw`."""
        return self.withdraw(tokens, searches)

    def snapshot(self) -> PoolSnapshot:
        """The pool's balance and flows now."""
        with self._lock:
            return PoolSnapshot(
                tokens=self.tokens,
                searches=self.searches,
                deposited_tokens=self._deposited[0],
                deposited_searches=self._deposited[1],
                withdrawn_tokens=self._withdrawn[0],
                withdrawn_searches=self._withdrawn[1],
            )
