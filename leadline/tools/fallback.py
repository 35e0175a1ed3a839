"""A chain of search backends with per-provider rate limits.

Web search APIs fail in ordinary ways (a key runs out, a quota resets hourly, ddgs gets rate-limited),
and a research run should not end because one provider did. :class:`FallbackSearch` asks its backends in
order and answers with the first that succeeds (optionally: the first with results); each result's
``backend`` says who answered. :class:`RateLimiter` spaces the calls to each provider so we stay inside
its published limits instead of learning them from 429s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType

from leadline.errors import ConfigError, SearchError
from leadline.tools.base import SearchBackend, SearchResult

DEFAULT_RATE_LIMITS: Mapping[str, float] = MappingProxyType(
    {"brave": 1.0, "duckduckgo": 0.5, "tavily": 2.0, "exa": 5.0}
)
"""Calls per second per provider: Brave's free plan allows 1/s; ddgs is kept slow to avoid blocks."""


class RateLimiter:
    """A token bucket: ``rate`` calls per second on average, bursts of up to ``burst``. Async and fair
    enough (callers queue on a lock), with injectable clock and sleep for tests."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not rate > 0 or burst < 1:
            raise ConfigError(f"rate limit must be positive with burst >= 1, got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a token; return how long we waited."""
        async with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = 0.0
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                await self._sleep(wait)
                self._updated = self._clock()
                self._tokens = 1.0
            self._tokens -= 1
            return wait


class RateLimitedSearch:
    """A backend whose calls pass a :class:`RateLimiter` first."""

    def __init__(self, inner: SearchBackend, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter
        self.name = inner.name

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Wait for the rate limiter, then search the wrapped backend."""
        await self.limiter.acquire()
        return await self.inner.search(query, k=k)

    async def aclose(self) -> None:
        """Close the wrapped backend."""
        await self.inner.aclose()


class FallbackSearch:
    """Ask backends in order; the first to answer wins. Raises :class:`SearchError` only if all fail."""

    def __init__(
        self,
        backends: Sequence[SearchBackend],
        *,
        rate_limits: Mapping[str, float] | None = None,
        fall_through_on_empty: bool = True,
    ) -> None:
        if not backends:
            raise ConfigError("FallbackSearch needs at least one backend")
        limits = DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits
        self.backends: list[SearchBackend] = [
            RateLimitedSearch(b, RateLimiter(limits[b.name])) if b.name in limits else b for b in backends
        ]
        self.fall_through_on_empty = fall_through_on_empty
        self.name = ">".join(b.name for b in backends)
        self.failures: list[tuple[str, str]] = []
        """(backend, message) of every failure so far, newest last: the run can report what fell over."""

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """The first backend's results that answers with some; on errors or nothing, the next backend's."""
        errors: list[str] = []
        empty = False
        for backend in self.backends:
            try:
                results = await backend.search(query, k=k)
            except SearchError as exc:
                errors.append(f"{backend.name}: {exc.message}")
                self.failures.append((backend.name, exc.message))
                continue
            if results or not self.fall_through_on_empty:
                return results
            empty = True
        if empty:
            return []
        raise SearchError("every search backend failed: " + "; ".join(errors))

    async def aclose(self) -> None:
        """Close every backend of the chain."""
        for backend in self.backends:
            await backend.aclose()


__all__ = ["DEFAULT_RATE_LIMITS", "FallbackSearch", "RateLimitedSearch", "RateLimiter"]
