"""The batch pool: budget that runs of one batch return unspent, for the runs that still need it.

Runs of a batch start with their planned shares. A run that stops early (the controller saw that more
compute would not pay) deposits what it did not spend; a run that could still use more withdraws from
the pool. Many runs do this at once — in threads or as asyncio tasks of one event loop — so every
operation takes one lock, holds it for a few arithmetic steps and never awaits while holding it.
Consistency across processes (Ray workers) needs a shared store and is not this class's job.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from leadline.errors import InvalidBudgetError
from leadline.storage.batches import grant_amount


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


def fit_shares(
    shares: list[tuple[int, int]], total_tokens: int, total_searches: int
) -> list[tuple[int, int]]:
    """Make plan shares fit the batch total on both axes (an adaptive plan trades one for the other).

    Every question gets at least one search and a few tokens while the total allows (the loop answers
    nothing before a search); above that floor the shares keep their proportions, scaled down on an axis
    whose sum is over the total.
    """
    n = len(shares)
    if n == 0:
        return []

    def axis(values: list[int], total: int, floor: int) -> list[int]:
        if floor * n > total:  # not even the floor for everyone: the first ones get it, the rest nothing
            return [floor if i < total // max(1, floor) else 0 for i in range(n)]
        values = [max(floor, v) for v in values]
        above = [v - floor for v in values]
        room = total - floor * n
        if sum(above) <= room:
            return values
        return [floor + int(a * room / sum(above)) for a in above]

    tokens = axis([t for t, _ in shares], total_tokens, min(64, total_tokens // n))
    searches = axis([s for _, s in shares], total_searches, 1)
    return list(zip(tokens, searches, strict=True))


class LocalGrants:
    """Hard caps for the runs of one in-process batch, out of the batch total.

    A run starts with a grant — its planned share times a headroom, cut so the questions not yet started
    keep their shares, never more than is left (the rule of the database pool, ``grant_amount``) — which
    becomes its hard caps; when it ends, what it did not spend goes back. So a batch run in one process
    never spends more than its total. A run that finds too little left waits for another to give some
    back, and gets None when nothing is running that could.
    """

    def __init__(
        self,
        total_tokens: int,
        total_searches: int,
        shares: Sequence[tuple[int, int]],
        *,
        headroom: float = 2.0,
        min_tokens: int = 16,
    ) -> None:
        self.tokens, self.searches = total_tokens, total_searches
        self.shares = list(shares)
        self.headroom = headroom
        self.min_tokens = min_tokens
        self._waiting = set(range(len(self.shares)))
        self._running = 0
        self._changed = asyncio.Condition()

    async def take(self, i: int) -> tuple[int, int] | None:
        """Question ``i``'s grant (tokens, searches), or None when the batch has nothing left for it."""
        async with self._changed:
            while True:
                share_t, share_s = self.shares[i]
                others = [self.shares[j] for j in self._waiting if j != i]
                tokens = grant_amount(share_t, self.headroom, self.tokens, sum(t for t, _ in others))
                searches = grant_amount(share_s, self.headroom, self.searches, sum(s for _, s in others))
                if tokens >= min(self.min_tokens, max(1, share_t)) and searches >= 1:
                    self._waiting.discard(i)
                    self.tokens -= tokens
                    self.searches -= searches
                    self._running += 1
                    return tokens, searches
                if self._running == 0:
                    self._waiting.discard(i)
                    return None
                await self._changed.wait()

    async def settle(self, grant: tuple[int, int], spent_tokens: int, spent_searches: int) -> None:
        """A run ended: return its grant less what it spent."""
        async with self._changed:
            self.tokens += max(0, grant[0] - spent_tokens)
            self.searches += max(0, grant[1] - spent_searches)
            self._running -= 1
            self._changed.notify_all()
