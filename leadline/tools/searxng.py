"""Web search through a SearxNG instance, the self-hosted metasearch engine, via its JSON API.

SearxNG is the open-web backend that needs no API key: one GET of ``{base}/search?q=...&format=json``.
Its rows are normalized to :class:`~leadline.tools.base.SearchResult` (``doc_id`` is the URL) with the
raw row kept for provenance. Every failure, including the 403 SearxNG sends while its JSON output is
switched off, becomes a one-line :class:`~leadline.errors.SearchError` that says what to do.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from leadline.errors import ConfigError, SearchError
from leadline.tools.base import SearchResult

_ENABLE_JSON_HINT = (
    "enable it in SearxNG's settings.yml with `search: formats: [html, json]` and restart SearxNG"
)


class SearxngSearch:
    """A :class:`~leadline.tools.base.SearchBackend` over one SearxNG instance.

    ``client`` may be injected (tests, shared connection pools); a client created here is closed by
    :meth:`aclose`, an injected one is left to its owner. ``max_pages`` bounds how many result pages one
    search may read when ``k`` is larger than a page (SearxNG pages hold about ten results).
    """

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        categories: str | None = None,
        engines: str | None = None,
        language: str | None = None,
        safesearch: int | None = None,
        max_pages: int = 2,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"SearxNG URL must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0 or max_pages < 1:
            raise ConfigError("SearxNG timeout_s must be positive and max_pages at least 1")
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)
        self._extra_params = {
            key: str(value)
            for key, value in (
                ("categories", categories),
                ("engines", engines),
                ("language", language),
                ("safesearch", safesearch),
            )
            if value is not None
        }
        self._max_pages = max_pages

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """Up to ``k`` results for ``query``, in SearxNG's order, one per URL."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if not query.strip():
            return []
        results: list[SearchResult] = []
        seen: set[str] = set()
        for page in range(1, self._max_pages + 1):
            payload = await self._fetch_page(query, page)
            rows = payload["results"]
            for row in rows:
                result = self._normalize(row, rank=len(results) + 1)
                if result is not None and result.doc_id not in seen:
                    seen.add(result.doc_id)
                    results.append(result)
                    if len(results) == k:
                        return results
            if not rows:
                if page == 1 and payload.get("unresponsive_engines"):
                    raise SearchError(f"SearxNG at {self.base_url}: {_describe_unresponsive(payload)}")
                break
        return results

    async def aclose(self) -> None:
        """Close the HTTP client this backend opened."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> SearxngSearch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _fetch_page(self, query: str, page: int) -> dict[str, Any]:
        params = {"q": query, "format": "json", "pageno": str(page), **self._extra_params}
        url = f"{self.base_url}/search"
        try:
            response = await self._client.get(url, params=params, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise SearchError(
                f"SearxNG at {self.base_url} did not answer within {self._timeout.read} s"
            ) from exc
        except httpx.ConnectError as exc:
            raise SearchError(f"cannot reach SearxNG at {self.base_url}: {_reason(exc)}") from exc
        except httpx.HTTPError as exc:
            raise SearchError(f"SearxNG request to {self.base_url} failed: {_reason(exc)}") from exc
        if response.status_code == 403:
            raise SearchError(
                f"SearxNG at {self.base_url} refused format=json (HTTP 403); {_ENABLE_JSON_HINT}"
            )
        if response.status_code == 429:
            raise SearchError(
                f"SearxNG at {self.base_url} is rate-limiting us (HTTP 429); for a private instance set "
                "`server: limiter: false` in settings.yml"
            )
        if response.status_code != 200:
            raise SearchError(f"SearxNG at {self.base_url} answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise SearchError(
                f"SearxNG at {self.base_url} answered with a body that is not JSON (is this a SearxNG URL?)"
            ) from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise SearchError(f"SearxNG at {self.base_url} answered JSON without a results list")
        return payload

    def _normalize(self, row: Any, *, rank: int) -> SearchResult | None:
        if not isinstance(row, dict):
            return None
        url = row.get("url")
        # Only web pages can be read later; other schemes (magnet:, ftp:) are useless to the agent.
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return None
        score = row.get("score")
        return SearchResult(
            doc_id=url,
            url=url,
            title=_text(row.get("title")) or url,
            snippet=_text(row.get("content")),
            score=float(score) if isinstance(score, int | float) else 0.0,
            rank=rank,
            backend=self.name,
            raw=row,
        )


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _reason(exc: Exception) -> str:
    # httpx wraps the OS error; its first line ("[Errno 111] Connection refused") is what a user needs.
    message = str(exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _describe_unresponsive(payload: dict[str, Any]) -> str:
    failures = []
    for entry in payload.get("unresponsive_engines") or []:
        if isinstance(entry, list | tuple) and entry:
            failures.append(f"{entry[0]} ({entry[1]})" if len(entry) > 1 else str(entry[0]))
    return "no results; engines failed: " + (", ".join(failures) or "unknown")


__all__ = ["SearxngSearch"]
