"""Commercial and public web search APIs behind the one :class:`~leadline.tools.base.SearchBackend` protocol.

Tavily, Brave and Exa are plain JSON APIs called with httpx; DuckDuckGo goes through the ``ddgs`` library
(the ``ddgs`` extra), imported only when used. Each answer is normalized to :class:`SearchResult` (url,
title, snippet, score, rank, backend) with the provider's own row kept in ``raw`` for provenance. Titles
and snippets are page-controlled text, so they are cleaned like page text.

API keys are explicit arguments (:mod:`leadline.wiring` passes those of :class:`~leadline.config.Settings`,
which reads the environment), are held in a :class:`Secret` whose ``repr`` is masked, travel only in
request headers, and never appear in an error message, a result's ``raw`` or a log line.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from leadline.errors import ConfigError, SearchError
from leadline.tools.base import SearchBackend, SearchResult
from leadline.tools.untrusted import clean_untrusted_text

API_KEY_ENV_VARS: Mapping[str, str] = MappingProxyType(
    {"tavily": "TAVILY_API_KEY", "brave": "BRAVE_API_KEY", "exa": "EXA_API_KEY"}
)
"""Environment variable per provider; ``leadline.config`` reads them into ``Settings.<name>_api_key``."""

_TAGS = re.compile(r"<[^>]+>")


class Secret:
    """A credential that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.strip():
            raise ConfigError("an API key must not be empty")
        self._value = value.strip()

    def reveal(self) -> str:
        """The secret's value, for the one request header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # no pickling into checkpoints
        raise TypeError("a Secret cannot be pickled")


def _text(value: Any, limit: int = 1000) -> str:
    """Provider text to plain, cleaned text (Brave puts <strong> in descriptions; all of it is untrusted)."""
    if not isinstance(value, str):
        return ""
    return clean_untrusted_text(html.unescape(_TAGS.sub("", value)))[:limit]


def _score(value: Any, rank: int) -> float:
    """The provider's score, or 1/rank where it has none (Brave, DuckDuckGo); higher is better either way."""
    return float(value) if isinstance(value, int | float) else 1.0 / rank


class _HTTPSearch:
    """Shared plumbing: one client, error mapping that never echoes credentials."""

    name = "web"

    def __init__(
        self, *, timeout_s: float = 15.0, transport: httpx.AsyncBaseTransport | None = None, base_url: str
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)), transport=transport
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=***)"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, f"{self.base_url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise SearchError(f"{self.name} search failed: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise SearchError(f"{self.name} refused the API key (HTTP {response.status_code})")
        if response.status_code == 429:
            raise SearchError(f"{self.name} rate limit reached (HTTP 429)")
        if response.status_code >= 400:
            raise SearchError(f"{self.name} search failed with HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise SearchError(f"{self.name} answered with a body that is not JSON") from None


class TavilySearch(_HTTPSearch):
    """Tavily ``POST /search``: results carry ``content`` (a snippet) and a relevance ``score``."""

    name = "tavily"

    def __init__(
        self,
        api_key: str | Secret,
        *,
        search_depth: str = "basic",
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str = "https://api.tavily.com",
    ) -> None:
        super().__init__(timeout_s=timeout_s, transport=transport, base_url=base_url)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.search_depth = search_depth

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Search with the Tavily API."""
        data = await self._call(
            "POST",
            "/search",
            json={
                "query": query,
                "max_results": k,
                "search_depth": self.search_depth,
                "include_answer": False,
            },
            headers={"Authorization": f"Bearer {self._key.reveal()}"},
        )
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise SearchError("tavily answer has no results list")
        return _normalize(rows[:k], self.name, url="url", title="title", snippet="content", score="score")


class BraveSearch(_HTTPSearch):
    """Brave Search ``GET /res/v1/web/search``: results under ``web.results`` with an HTML ``description``."""

    name = "brave"

    def __init__(
        self,
        api_key: str | Secret,
        *,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str = "https://api.search.brave.com",
    ) -> None:
        super().__init__(timeout_s=timeout_s, transport=transport, base_url=base_url)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Search with the Brave Search API."""
        data = await self._call(
            "GET",
            "/res/v1/web/search",
            params={"q": query, "count": min(k, 20)},
            headers={"Accept": "application/json", "X-Subscription-Token": self._key.reveal()},
        )
        web = data.get("web") if isinstance(data, dict) else None
        rows = web.get("results", []) if isinstance(web, dict) else []
        return _normalize(rows[:k], self.name, url="url", title="title", snippet="description", score=None)


class ExaSearch(_HTTPSearch):
    """Exa ``POST /search`` with highlights: results carry ``score`` (when given) and ``highlights``."""

    name = "exa"

    def __init__(
        self,
        api_key: str | Secret,
        *,
        search_type: str = "auto",
        timeout_s: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str = "https://api.exa.ai",
    ) -> None:
        super().__init__(timeout_s=timeout_s, transport=transport, base_url=base_url)
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.search_type = search_type

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Search with the Exa API."""
        data = await self._call(
            "POST",
            "/search",
            json={
                "query": query,
                "numResults": k,
                "type": self.search_type,
                "contents": {"highlights": True},
            },
            headers={"x-api-key": self._key.reveal()},
        )
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise SearchError("exa answer has no results list")

        def summary(row: dict[str, Any]) -> Any:
            highlights = row.get("highlights")
            if isinstance(highlights, list) and highlights:
                return " … ".join(h for h in highlights if isinstance(h, str))
            return row.get("text") or row.get("summary") or ""

        return _normalize(rows[:k], self.name, url="url", title="title", snippet=summary, score="score")


class DuckDuckGoSearch:
    """DuckDuckGo (and friends) through the ``ddgs`` metasearch library; no key. The ``ddgs`` extra."""

    name = "duckduckgo"

    def __init__(
        self,
        *,
        region: str = "us-en",
        safesearch: str = "moderate",
        backend: str = "auto",
        timeout_s: int = 10,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.region = region
        self.safesearch = safesearch
        self.backend = backend
        self.timeout_s = timeout_s
        self._factory = client_factory

    def _client(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            module = importlib.import_module("ddgs")
        except ImportError as exc:
            raise ConfigError(
                "DuckDuckGo search needs the 'ddgs' extra: pip install 'leadline[ddgs]'"
            ) from exc
        return module.DDGS(timeout=self.timeout_s)

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Search DuckDuckGo through the ddgs package (in a thread: it is synchronous)."""
        client = self._client()

        def run() -> Any:
            return client.text(
                query, region=self.region, safesearch=self.safesearch, max_results=k, backend=self.backend
            )

        try:
            rows = await asyncio.to_thread(run)
        except ConfigError:
            raise
        except (
            Exception
        ) as exc:  # ddgs raises its own DDGSException family, RatelimitException, TimeoutException
            raise SearchError(f"duckduckgo search failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(rows, list):
            raise SearchError("duckduckgo answer is not a list")
        return _normalize(rows[:k], self.name, url="href", title="title", snippet="body", score=None)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None


def _normalize(
    rows: list[Any],
    backend: str,
    *,
    url: str,
    title: str,
    snippet: str | Callable[[dict[str, Any]], Any],
    score: str | None,
) -> list[SearchResult]:
    results: list[SearchResult] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        link = row.get(url)
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            continue  # only web pages: the fetcher would refuse anything else anyway
        rank = len(results) + 1
        results.append(
            SearchResult(
                doc_id=link,
                url=link,
                title=_text(row.get(title), 300) or link,
                snippet=_text(snippet(row) if callable(snippet) else row.get(snippet)),
                score=_score(row.get(score) if score else None, rank),
                rank=rank,
                backend=backend,
                raw=dict(row),
            )
        )
    return results


def _key(provider: str, api_key: str | Secret | None) -> Secret:
    if not api_key:
        raise ConfigError(f"{provider} search needs an API key: set {API_KEY_ENV_VARS[provider]}")
    return api_key if isinstance(api_key, Secret) else Secret(api_key)


def web_backend(name: str, *, api_key: str | Secret | None = None, **options: Any) -> SearchBackend:
    """Build a web backend by name (tavily, brave, exa, duckduckgo/ddg); the first three need ``api_key``."""
    name = name.lower()
    if name == "tavily":
        return TavilySearch(_key("tavily", api_key), **options)
    if name == "brave":
        return BraveSearch(_key("brave", api_key), **options)
    if name == "exa":
        return ExaSearch(_key("exa", api_key), **options)
    if name in ("duckduckgo", "ddg", "ddgs"):
        return DuckDuckGoSearch(**options)
    raise ConfigError(f"unknown web search backend {name!r}; choose tavily, brave, exa or duckduckgo")


__all__ = [
    "API_KEY_ENV_VARS",
    "BraveSearch",
    "DuckDuckGoSearch",
    "ExaSearch",
    "Secret",
    "TavilySearch",
    "web_backend",
]
