"""Grants for the local executor: the database pool's rule, held in memory for runs of one event loop.

A run starts with a grant — its planned share times a headroom, cut so the questions not yet started
keep their shares, never more than is left — which become its hard caps; when it ends, what it did not
spend goes back. So a batch run in one process never spends more than its total either. All of it runs
on one event loop without awaiting in between, so no lock is needed; a run that finds too little left
waits for another to give some back, and fails when nothing is running that could.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from leadline.storage.batches import grant_amount


class LocalGrants:
    """The pool of one in-process batch (see the module doc)."""

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


__all__ = ["LocalGrants"]
