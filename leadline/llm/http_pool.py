"""The LLM client's HTTP transport: several small connection pools instead of one large one.

httpcore (httpx's transport) walks its whole connection list on every request and every finished
response, and for each idle connection it walks the list again (``_assign_requests_to_connections``):
the CPU per call grows with the square of the connections held. A batch with 32 runs at once holds ~32
connections to its model server, and that walk, with a ``getpeername`` system call per connection for
the keep-alive check, was over half the HTTP client's CPU and an eighth of a whole batch run's
(``benchmarks/batch.py``, py-spy). The same pool also closes any idle connection while it holds more
connections than it keeps alive (httpx keeps 20), so past 20 calls at once connections were reopened
call after call.

:class:`ShardedTransport` spreads calls over :data:`SHARDS` ordinary httpx transports, each call to the
one with the fewest calls in flight (the first on a tie, so one caller at a time keeps reusing one
connection). Each pool then holds about (calls at once) / SHARDS connections; everything else —
timeouts, keep-alive, HTTP semantics — is httpx's own. A client given a transport does not read
proxies from the environment, so where ``HTTP_PROXY`` and the like are set the LLM client keeps httpx's
single pool (:func:`uses_environment_proxies`).
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["SHARDS", "ShardedTransport", "uses_environment_proxies"]

SHARDS = 16
"""Connection pools per client."""
POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)
"""Each pool's limits (so up to 1,024 connections a client): every connection a shard opened under load
is kept alive for the next call, until httpx's keep-alive expiry (5 s idle)."""


class _Counted(httpx.AsyncByteStream):
    """A response body that reports, once, when it is closed (its call is no longer in flight)."""

    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self._inner = inner
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


class ShardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over ``shards`` pools; each request goes to the least busy (see the module)."""

    def __init__(self, shards: int = SHARDS, limits: httpx.Limits = POOL_LIMITS) -> None:
        if shards < 1:
            raise ValueError("a sharded transport needs at least one shard")
        self._limits = limits
        self._ssl: ssl.SSLContext | None = None
        self._shards: list[httpx.AsyncHTTPTransport | None] = [None] * shards
        """Made when first needed (a caller making one call at a time only ever uses the first), all
        with one TLS context (loading the CA bundle costs ~25 ms)."""
        self._in_flight = [0] * shards

    def _shard(self, i: int) -> httpx.AsyncHTTPTransport:
        shard = self._shards[i]
        if shard is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            shard = self._shards[i] = httpx.AsyncHTTPTransport(verify=self._ssl, limits=self._limits)
        return shard

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Calls in flight per shard (a response counts until its body is closed)."""
        return tuple(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool with the fewest calls in flight; the call counts until its
        response body is closed."""
        busy = self._in_flight
        i = busy.index(min(busy))
        busy[i] += 1

        def done() -> None:
            busy[i] -= 1

        try:
            response = await self._shard(i).handle_async_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Counted(response.stream, done)
        return response

    async def aclose(self) -> None:
        """Close every pool that was made (and its connections)."""
        for shard in self._shards:
            if shard is not None:
                await shard.aclose()


def uses_environment_proxies() -> bool:
    """Whether httpx would route calls through a proxy named in the environment (``HTTP_PROXY``,
    ``HTTPS_PROXY``, ``ALL_PROXY``...): then only httpx's own transport honours it."""
    return bool(urllib.request.getproxies())
