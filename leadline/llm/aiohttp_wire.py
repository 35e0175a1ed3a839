"""The LLM client's wire: JSON requests through aiohttp, at a third of httpx's CPU per call.

A batch worker makes every LLM call of its runs from one process, and Python's CPU is what bounds how
many runs one process finishes a second. Per call, httpx costs about three times what aiohttp does
(``benchmarks/http_pool.py`` measures them side by side): httpcore, h11 and anyio are pure Python,
its connection pool walks every connection on each request, and each request builds URL, header and
cookie objects the client never uses. aiohttp parses HTTP in C and keeps a plain deque per host.

:class:`AiohttpWire` has the one method the client calls, ``request(method, url, json=, headers=)``,
with httpx's signature, and raises httpx's exceptions, so the client's retries and messages are the same
on either wire; the answer is a :class:`Reply` (status, headers, body) where httpx gives a Response.
Error mapping: a connection that cannot be made is ``httpx.ConnectError`` (``ConnectTimeout`` when it
timed out); a read that timed out is ``httpx.ReadTimeout``; a keep-alive connection the server closed
while it sat in the pool, or one reset mid-response, is ``httpx.ReadError`` (the client retries that once
at once); any other failure of the exchange is ``httpx.RemoteProtocolError``.

Proxies named in the environment (``HTTP_PROXY`` and the like) are honoured by httpx's own transport,
in all their forms; where one is set, the client keeps httpx (:func:`uses_environment_proxies`).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import ssl
import urllib.request
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpWire", "Reply", "uses_environment_proxies"]

KEEPALIVE_S = 15.0
"""How long an idle connection is kept for the next call."""


class Reply:
    """A whole HTTP response: what the client reads of one (httpx's ``Response`` has the same fields)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        """Case-insensitive, as httpx's (aiohttp's ``CIMultiDictProxy``)."""
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` (``json.JSONDecodeError``) when it is not."""
        return jsonlib.loads(self.content)


class AiohttpWire:
    """JSON requests over an ``aiohttp.ClientSession`` per event loop, made at the loop's first call.

    ``timeout_s`` bounds each read from the socket and ``connect_s`` each connection attempt (the
    client's deadline bounds the whole call). Connections are kept alive per host without a cap.

    A session and its connections belong to the loop they were made in, and synchronous callers run
    each call in a new ``asyncio.run``: a session is closed when its loop shuts down (an async
    generator that the loop finalises, which ``asyncio.run`` does before it closes the loop), or by
    :meth:`aclose`, so neither leaves an unclosed session or socket behind.
    """

    def __init__(self, *, timeout_s: float, connect_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None

    async def _client(self) -> aiohttp.ClientSession:
        session, loop = self._session, asyncio.get_running_loop()
        if session is not None and not session.closed and self._loop is loop:
            return session
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # the same CA bundle as httpx
        session = self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S, ssl=self._ssl),
            timeout=self._timeout,
            json_serialize=_dumps,
        )
        self._loop = loop
        self._closer = _close_at_loop_end(session, loop)
        await anext(self._closer)
        return session

    async def request(
        self, method: str, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """One request with an optional JSON body; the whole response, or one of httpx's exceptions."""
        session = await self._client()
        try:
            async with session.request(
                method, url, json=json, headers=headers, allow_redirects=False
            ) as response:
                return Reply(response.status, response.headers, await response.read())
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(_message(exc, "connecting timed out")) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_message(exc, "cannot connect")) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(_message(exc, "reading timed out")) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            raise httpx.ReadError(_message(exc, "the connection was closed")) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(_message(exc, "invalid URL")) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(_message(exc, "the exchange failed")) from exc

    async def aclose(self) -> None:
        """Close the session of the running loop and its connections."""
        closer, self._closer, self._session = self._closer, None, None
        if closer is not None:
            await closer.aclose()


async def _close_at_loop_end(
    session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop
) -> AsyncGenerator[None, None]:
    """Suspended once started; closing it (the loop's shutdown, or ``aclose``) closes ``session``."""
    try:
        yield
    finally:
        if not session.closed and loop is asyncio.get_running_loop():
            await session.close()


def _dumps(value: Any) -> str:
    # what httpx sends for json=: compact, UTF-8, no NaN
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _message(exc: BaseException, default: str) -> str:
    return str(exc) or default


def uses_environment_proxies() -> bool:
    """Whether httpx would route calls through a proxy named in the environment (``HTTP_PROXY``,
    ``HTTPS_PROXY``, ``ALL_PROXY``...): then the client keeps httpx, which honours every form of it."""
    return bool(urllib.request.getproxies())
