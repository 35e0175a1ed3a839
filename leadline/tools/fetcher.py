"""The web fetcher: fetch a page safely and fast, and turn it into a document the agent can read.

Every URL is untrusted (a search result, or a link a hostile page proposed), so a fetch goes through the
SSRF guard (:mod:`leadline.tools.ssrf`) on every redirect hop, runs under a total deadline (httpx only
has per-operation timeouts, and a slow drip beats those), stops reading at a cap on *decoded* bytes
(:mod:`leadline.tools.decoding`), accepts only the content types it can extract, honours robots.txt
(RFC 9309, with protego) and spaces requests per host. Transient failures (connection resets, timeouts,
429/5xx) are retried with backoff; nothing else is. Every failure is a :class:`~leadline.errors.FetchError`
with a short ``reason``, which the agent sees as an observation and routes around.

How it behaves (deadlines, caps, retries, the SSRF allow-list) is one :class:`FetchPolicy`
(:mod:`leadline.tools.fetch_policy`), made from the settings by :func:`leadline.wiring.fetch_policy`.

Fetched pages go to a content-addressed :class:`~leadline.tools.base.PageStore` when one is given, so a
re-run or a resumed run reads them from there instead of fetching again.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from protego import Protego
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from leadline.errors import BlockedURLError, FetchError
from leadline.tools.base import Document, PageStore, SearchResult
from leadline.tools.decoding import BodyDecoder, supported_encodings
from leadline.tools.extraction import ExtractionPolicy, extract_page
from leadline.tools.fetch_policy import DEFAULT_CONTENT_TYPES, FetchPolicy
from leadline.tools.fetched import FetchedPage, MemoryPageStore, mime_of
from leadline.tools.responses import (
    TRANSIENT_REASONS,
    HTTPStatusFetchError,
    is_transient,
    map_http_error,
    retry_after_seconds,
)
from leadline.tools.ssrf import AddressPolicy, Resolver, check_url, guarded_client

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_KEPT_HEADERS = ("content-type", "content-language", "last-modified", "etag", "date")
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB


class _HostGate:
    """Per-host politeness: a concurrency limit and a least interval between request starts."""

    def __init__(self, concurrency: int, interval_s: float) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self.interval_s = interval_s
        self._not_before = 0.0

    def defer(self, seconds: float) -> None:
        """Hold all requests to this host for ``seconds`` (a Retry-After applies to the host, not one URL)."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            async with self._lock:
                now = time.monotonic()
                start = max(now, self._not_before)
                self._not_before = start + self.interval_s
            if start > now:
                await asyncio.sleep(start - now)
            yield


@dataclass
class _RobotsEntry:
    rules: Protego | None
    """None means allow everything (no robots.txt)."""
    disallow_all: bool
    expires: float


def _content_type_allowed(mime: str, allowed: tuple[str, ...]) -> bool:
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == mime or (pattern.endswith("/*") and mime.startswith(pattern[:-1])):
            return True
    return False


def _sniff(body: bytes) -> str | None:
    head = body[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head:
        return "text/html"
    return None


class Fetcher:
    """Fetch pages (``fetch``) and read search results as documents (``read``); a :class:`Reader`.

    One instance holds one connection pool, the robots.txt cache and the per-host gates; share it across
    the concurrent reads of a run and close it with ``aclose`` (or ``async with``).
    """

    name = "web"

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        store: PageStore | None = None,
        resolver: Resolver | None = None,
        extraction: ExtractionPolicy | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.store = store
        self.extraction = extraction or ExtractionPolicy()
        self._address_policy = AddressPolicy(allow=self.policy.allow)
        self._client = guarded_client(
            self._address_policy,
            resolver=resolver,
            timeout=httpx.Timeout(self.policy.read_timeout_s, connect=self.policy.connect_timeout_s),
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.1",
                "Accept-Encoding": ", ".join(supported_encodings()),
            },
            limits=httpx.Limits(
                max_connections=self.policy.max_connections,
                max_keepalive_connections=self.policy.max_connections,
            ),
            verify=verify,
        )
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, _RobotsEntry] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    # -- public API -------------------------------------------------------------------------------

    async def fetch(self, url: str) -> FetchedPage:
        """Fetch ``url`` (or return the stored copy); raises :class:`FetchError` / BlockedURLError."""
        parsed = check_url(url, self._address_policy)
        if self.store is not None:
            cached = self.store.get_page(url)
            if cached is not None:
                return FetchedPage.from_stored(cached)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.policy.deadline_s):
                page = await self._fetch_with_retries(url, parsed)
        except TimeoutError as exc:
            raise FetchError(
                f"fetching {url} took longer than the {self.policy.deadline_s:g} s deadline",
                url=url,
                reason="deadline",
            ) from exc
        page = FetchedPage(
            url=url,
            final_url=page.final_url,
            status=page.status,
            content_type=page.content_type,
            body=page.body,
            sha256=page.sha256,
            headers=page.headers,
            redirects=page.redirects,
            elapsed_s=time.monotonic() - started,
        )
        if self.store is not None:
            self.store.put_page(page.to_stored())
        return page

    async def read(self, result: SearchResult) -> Document:
        """Fetch a search result's page and extract its text as a :class:`Document`."""
        url = result.url or result.doc_id
        page = await self.fetch(url)
        extracted = await asyncio.to_thread(
            extract_page,
            page.body,
            content_type=page.content_type,
            url=page.final_url,
            policy=self.extraction,
        )
        if extracted is None or not extracted.text.strip():
            raise FetchError(f"no readable text at {url}", url=url, reason="no_text")
        metadata: dict[str, Any] = {
            "final_url": page.final_url,
            "content_type": page.mime,
            "sha256": page.sha256,
            "from_cache": page.from_cache,
            "extraction": extracted.mode,
            "truncated": extracted.truncated,
        }
        for key in ("author", "date", "site", "language"):
            value = getattr(extracted, key)
            if value:
                metadata[key] = value
        return Document(
            doc_id=url,
            title=extracted.title or result.title or page.final_url,
            text=extracted.text,
            url=page.final_url,
            metadata=metadata,
        )

    # -- the fetch itself -------------------------------------------------------------------------

    async def _fetch_with_retries(self, url: str, parsed: httpx.URL) -> FetchedPage:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            retry=retry_if_exception(is_transient),
            wait=self._wait,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._fetch_following_redirects(url, parsed)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, HTTPStatusFetchError) and exc.retry_after is not None:
            return exc.retry_after
        backoff = min(self.policy.max_backoff_s, self.policy.backoff_s * 2 ** (state.attempt_number - 1))
        return float(backoff * (0.5 + random.random() / 2))  # jitter, so many fetchers do not retry in step

    async def _fetch_following_redirects(self, url: str, parsed: httpx.URL) -> FetchedPage:
        current = parsed
        seen = {str(current)}
        redirects: list[str] = []
        for hop in range(self.policy.max_redirects + 1):
            if hop:
                current = check_url(current, self._address_policy)
            if self.policy.respect_robots:
                await self._check_robots(current)
            async with self._gate(current).slot():
                response = await self._send(current)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_STATUSES and location:
                        target = self._join(current, location)
                        redirects.append(str(target))
                        if str(target) in seen:
                            raise FetchError(f"redirect loop at {target}", url=url, reason="redirect_loop")
                        seen.add(str(target))
                        current = target
                        continue
                    self._check_status(response, current)
                    content_type = response.headers.get("content-type", "")
                    if content_type and not _content_type_allowed(
                        mime_of(content_type), self.policy.allowed_content_types
                    ):
                        raise FetchError(
                            f"{current} is {mime_of(content_type)!r}, not a readable page",
                            url=url,
                            reason="content_type",
                        )
                    body = await self._read_body(response, str(current))
                finally:
                    await response.aclose()
            if not content_type:
                sniffed = _sniff(body)
                if sniffed is None or not _content_type_allowed(sniffed, self.policy.allowed_content_types):
                    raise FetchError(
                        f"{current} has no readable content type", url=url, reason="content_type"
                    )
                content_type = sniffed
            headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
            return FetchedPage(
                url=url,
                final_url=str(current),
                status=response.status_code,
                content_type=content_type,
                body=body,
                sha256=hashlib.sha256(body).hexdigest(),
                headers=headers,
                redirects=tuple(redirects),
            )
        raise FetchError(
            f"more than {self.policy.max_redirects} redirects from {url}",
            url=url,
            reason="too_many_redirects",
        )

    def _join(self, base: httpx.URL, location: str) -> httpx.URL:
        try:
            return base.join(location)
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(
                f"bad redirect target {location[:200]!r}", url=str(base), reason="malformed_url"
            ) from exc

    async def _send(self, url: httpx.URL) -> httpx.Response:
        request = self._client.build_request("GET", url)
        try:
            return await self._client.send(request, stream=True)
        except FetchError as exc:  # from the SSRF guard or the resolver, raised at connect time
            exc.url = str(url)
            raise
        except httpx.HTTPError as exc:
            raise map_http_error(exc, str(url)) from exc

    def _check_status(self, response: httpx.Response, url: httpx.URL) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if status in (429, 503) and retry_after is not None:
            if retry_after > self.policy.max_retry_after_s:
                raise FetchError(
                    f"{url} asks to wait {retry_after:.0f} s (Retry-After); not waiting",
                    url=str(url),
                    reason="rate_limited",
                )
            self._gate(url).defer(retry_after)
        raise HTTPStatusFetchError(
            f"{url} answered HTTP {status}", url=str(url), status=status, retry_after=retry_after
        )

    async def _read_body(self, response: httpx.Response, url: str, limit: int | None = None) -> bytes:
        limit = limit or self.policy.max_bytes
        encoding = response.headers.get("content-encoding", "")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and not encoding and int(declared) > limit:
            raise FetchError(f"{url} declares {declared} bytes, over the cap", url=url, reason="too_large")
        try:
            decoder = BodyDecoder(encoding)
        except FetchError as exc:
            exc.url = url
            raise
        parts: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_raw():
                out = decoder.decode(chunk, limit - total + 1)
                total += len(out)
                if total > limit:
                    raise FetchError(
                        f"{url} is larger than the {limit} byte cap (decoded)", url=url, reason="too_large"
                    )
                parts.append(out)
        except FetchError as exc:
            exc.url = url
            raise
        except httpx.HTTPError as exc:
            raise map_http_error(exc, url) from exc
        return b"".join(parts)

    # -- politeness and robots.txt ----------------------------------------------------------------

    def _gate(self, url: httpx.URL) -> _HostGate:
        key = f"{url.host}:{url.port or ''}"
        gate = self._gates.get(key)
        if gate is None:
            gate = _HostGate(self.policy.per_host_concurrency, self.policy.per_host_interval_s)
            self._gates[key] = gate
        return gate

    async def _check_robots(self, url: httpx.URL) -> None:
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        entry = self._robots.get(origin)
        if entry is None or entry.expires < time.monotonic():
            lock = self._robots_locks.setdefault(origin, asyncio.Lock())
            async with lock:
                entry = self._robots.get(origin)
                if entry is None or entry.expires < time.monotonic():
                    entry = await self._load_robots(origin, url)
                    self._robots[origin] = entry
        if entry.disallow_all:
            raise BlockedURLError(
                f"robots.txt of {origin} could not be read; RFC 9309 says assume disallow",
                url=str(url),
                reason="robots",
            )
        if entry.rules is not None and not entry.rules.can_fetch(str(url), self.policy.robots_token):
            raise BlockedURLError(f"robots.txt of {origin} disallows {url}", url=str(url), reason="robots")

    async def _load_robots(self, origin: str, url: httpx.URL) -> _RobotsEntry:
        expires = time.monotonic() + self.policy.robots_ttl_s
        target = check_url(f"{origin}/robots.txt", self._address_policy)
        try:
            for _ in range(5):  # RFC 9309: follow at least five redirects
                async with self._gate(target).slot():
                    response = await self._send(target)
                    try:
                        location = response.headers.get("location")
                        if response.status_code in _REDIRECT_STATUSES and location:
                            target = check_url(self._join(target, location), self._address_policy)
                            continue
                        status = response.status_code
                        body = await self._read_body(response, str(target), limit=_ROBOTS_MAX_BYTES)
                    finally:
                        await response.aclose()
                break
            else:
                return _RobotsEntry(
                    rules=None, disallow_all=False, expires=expires
                )  # too many: treat as none
        except FetchError as exc:
            if isinstance(exc, BlockedURLError) or exc.reason in TRANSIENT_REASONS | {"dns", "tls"}:
                # The page itself would fail the same way: report that, not a robots refusal (not cached).
                exc.url = str(url)
                raise
            if exc.reason == "too_large":
                return _RobotsEntry(rules=None, disallow_all=False, expires=expires)
            # An unreadable robots.txt: assume complete disallow (RFC 9309), but look again soon.
            return _RobotsEntry(rules=None, disallow_all=True, expires=time.monotonic() + 60.0)
        if 400 <= status < 500 and status != 429:
            return _RobotsEntry(rules=None, disallow_all=False, expires=expires)
        if not 200 <= status < 300:
            return _RobotsEntry(rules=None, disallow_all=True, expires=time.monotonic() + 60.0)
        rules = Protego.parse(body.decode("utf-8", errors="replace"))
        delay = rules.crawl_delay(self.policy.robots_token)
        if delay:
            gate = self._gate(url)
            gate.interval_s = max(gate.interval_s, min(float(delay), self.policy.max_crawl_delay_s))
        return _RobotsEntry(rules=rules, disallow_all=False, expires=expires)


__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "FetchPolicy",
    "FetchedPage",
    "Fetcher",
    "HTTPStatusFetchError",
    "MemoryPageStore",
]
