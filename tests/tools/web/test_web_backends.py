"""Tavily, Brave, Exa and DuckDuckGo adapters replayed against recorded answers in the real API shapes."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from leadline.config import Settings
from leadline.errors import ConfigError, SearchError
from leadline.tools.base import SearchBackend
from leadline.tools.web_backends import (
    BraveSearch,
    DuckDuckGoSearch,
    ExaSearch,
    Secret,
    TavilySearch,
    web_backend,
)
from leadline.wiring import make_search

from .conftest import RECORDED, run

KEY = "tvly-SECRET-KEY-0123456789"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


class Replay:
    """An httpx transport that records requests and answers with a recorded body."""

    def __init__(self, body: Any, status: int = 200) -> None:
        self.body = body
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def test_tavily_request_and_normalization() -> None:
    replay = Replay(recorded("tavily_search.json"))
    backend = TavilySearch(KEY, transport=replay.transport)
    results = run(backend.search("postgresql vacuum full lock", k=3))
    request = replay.requests[0]
    assert request.method == "POST" and request.url == "https://api.tavily.com/search"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "query": "postgresql vacuum full lock",
        "max_results": 3,
        "search_depth": "basic",
        "include_answer": False,
    }
    assert [r.rank for r in results] == [1, 2, 3] and {r.backend for r in results} == {"tavily"}
    assert results[0].url == "https://www.postgresql.org/docs/current/sql-vacuum.html"
    assert results[0].score == pytest.approx(0.8912537)
    assert "ACCESS EXCLUSIVE lock" in results[0].snippet
    assert "im_start" not in results[2].snippet  # snippets are untrusted text too
    assert results[0].raw["favicon"].endswith("favicon.ico")


def test_brave_request_and_normalization() -> None:
    replay = Replay(recorded("brave_web_search.json"))
    results = run(BraveSearch(KEY, transport=replay.transport).search("postgresql vacuum full lock", k=5))
    request = replay.requests[0]
    assert (
        request.url.path == "/res/v1/web/search" and request.url.params["q"] == "postgresql vacuum full lock"
    )
    assert request.url.params["count"] == "5" and request.headers["x-subscription-token"] == KEY
    assert len(results) == 2
    assert results[0].snippet.startswith("VACUUM FULL rewrites") and "<strong>" not in results[0].snippet
    assert "&amp;" not in results[0].snippet and " & " in results[0].snippet
    assert results[0].score == 1.0 and results[1].score == 0.5  # Brave has no scores: 1/rank
    assert results[1].raw["subtype"] == "qa"


def test_exa_request_and_normalization() -> None:
    replay = Replay(recorded("exa_search.json"))
    results = run(ExaSearch(KEY, transport=replay.transport).search("postgresql vacuum full lock", k=3))
    request = replay.requests[0]
    assert request.url == "https://api.exa.ai/search" and request.headers["x-api-key"] == KEY
    body = json.loads(request.content)
    assert body["numResults"] == 3 and body["contents"] == {"highlights": True}
    assert [r.url for r in results] == [
        "https://www.postgresql.org/docs/current/sql-vacuum.html",
        "https://www.cybertec-postgresql.com/en/vacuum-full-explained/",
    ]  # the ftp:// row is dropped
    assert results[0].snippet.startswith("This form is much slower")
    assert results[1].snippet.startswith("VACUUM FULL rewrites")  # no highlights: falls back to text
    assert results[0].score == pytest.approx(0.46013233)


@dataclass
class RecordedDDGS:
    rows: list[dict[str, str]]
    calls: list[dict[str, Any]]

    def text(self, query: str, **kwargs: Any) -> list[dict[str, str]]:
        self.calls.append({"query": query, **kwargs})
        return self.rows


def test_duckduckgo_normalization() -> None:
    client = RecordedDDGS(recorded("ddgs_text.json"), [])
    backend = DuckDuckGoSearch(client_factory=lambda: client)
    results = run(backend.search("postgresql vacuum full", k=2))
    assert client.calls == [
        {
            "query": "postgresql vacuum full",
            "region": "us-en",
            "safesearch": "moderate",
            "max_results": 2,
            "backend": "auto",
        }
    ]
    assert [r.url for r in results] == [
        "https://www.postgresql.org/docs/current/sql-vacuum.html",
        "https://wiki.postgresql.org/wiki/VACUUM_FULL",
    ]
    assert results[1].title == "VACUUM FULL - PostgreSQL wiki" and results[1].backend == "duckduckgo"


def test_duckduckgo_without_the_extra_names_it() -> None:
    try:
        import ddgs  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"leadline\[ddgs\]"):
            run(DuckDuckGoSearch().search("x"))
    else:
        pytest.skip("ddgs is installed here")


@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_errors_never_show_the_key(status: int) -> None:
    replay = Replay({"detail": {"error": f"Invalid API key: {KEY}"}}, status=status)
    for backend in (
        TavilySearch(KEY, transport=replay.transport),
        BraveSearch(KEY, transport=replay.transport),
        ExaSearch(KEY, transport=replay.transport),
    ):
        with pytest.raises(SearchError) as caught:
            run(backend.search("q"))
        assert KEY not in str(caught.value) and str(status) in str(caught.value)


def test_keys_are_masked_and_not_picklable() -> None:
    backend = TavilySearch(KEY)
    assert KEY not in repr(backend) and KEY not in repr(Secret(KEY)) and KEY not in str(Secret(KEY))
    assert KEY not in repr(vars(backend))
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))
    results = run(TavilySearch(KEY, transport=Replay(recorded("tavily_search.json")).transport).search("q"))
    assert all(KEY not in json.dumps(r.raw) for r in results)


def test_backends_by_name_take_their_key_explicitly() -> None:
    with pytest.raises(ConfigError, match="TAVILY_API_KEY"):
        web_backend("tavily")
    with pytest.raises(ConfigError, match="EXA_API_KEY"):
        web_backend("exa", api_key=None)
    brave = web_backend("brave", api_key="brave-key")
    assert isinstance(brave, SearchBackend) and brave.name == "brave"
    assert isinstance(web_backend("ddg"), DuckDuckGoSearch)
    with pytest.raises(ConfigError):
        web_backend("altavista")


def test_backends_from_settings_are_wired_with_the_settings_keys() -> None:
    # turning settings into backends is wiring's job; the tools never read Settings
    with pytest.raises(ConfigError, match="TAVILY_API_KEY"):
        make_search(Settings(search="tavily"))
    search, reader = make_search(Settings(search="brave", brave_api_key="brave-key"))
    try:
        assert isinstance(search, BraveSearch) and search.name == "brave"
        assert "brave-key" not in repr(search)
        assert reader is not None
    finally:
        run(search.aclose())
        run(reader.aclose())


def test_malformed_answers_are_search_errors() -> None:
    with pytest.raises(SearchError):
        run(TavilySearch(KEY, transport=Replay({"oops": True}).transport).search("q"))

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>captcha</html>")

    with pytest.raises(SearchError, match="not JSON"):
        run(BraveSearch(KEY, transport=httpx.MockTransport(not_json)).search("q"))
