"""SearxNG backend against a real HTTP server on loopback that speaks SearxNG's JSON shape."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from leadline.errors import ConfigError, SearchError
from leadline.tools.base import SearchBackend
from leadline.tools.searxng import SearxngSearch


def searxng_row(url: str, title: str, content: str, score: float, engine: str) -> dict[str, Any]:
    """One result row as SearxNG 2024+ returns it from /search?format=json."""
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    return {
        "url": url,
        "title": title,
        "content": content,
        "thumbnail": "",
        "engine": engine,
        "template": "default.html",
        "parsed_url": [scheme, host, "/" + path, "", "", ""],
        "img_src": "",
        "priority": "",
        "engines": [engine, "duckduckgo"],
        "positions": [1, 3],
        "score": score,
        "category": "general",
        "publishedDate": None,
    }


PAGE_1 = [
    searxng_row(
        "https://en.wikipedia.org/wiki/Otter",
        "Otter - Wikipedia",
        "Otters are  carnivorous\nmammals.",
        4.5,
        "wikipedia",
    ),
    searxng_row(
        "https://www.example.org/otters",
        "Ten otter facts",
        "Sea otters hold hands while sleeping.",
        2.0,
        "bing",
    ),
    {
        "url": "magnet:?xt=urn:btih:abc",
        "title": "otters.torrent",
        "content": "",
        "engine": "piratebay",
        "score": 1,
    },
    searxng_row("https://otters.example.net/", "", "A page with no title.", 1.2, "brave"),
]
PAGE_2 = [
    searxng_row("https://www.example.org/otters", "Ten otter facts", "duplicate of page 1", 1.0, "qwant"),
    searxng_row("https://zoo.example.com/otter", "Otter at the zoo", "Visit the otters.", 0.7, "mojeek"),
]


def envelope(
    query: str, results: list[dict[str, Any]], unresponsive: list[list[str]] | None = None
) -> dict[str, Any]:
    return {
        "query": query,
        "number_of_results": 0,
        "results": results,
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": ["sea otter"],
        "unresponsive_engines": unresponsive or [],
    }


class FakeSearxng:
    """Routes: /ok (two pages), /forbidden (403 as with json disabled), /html, /broken (500), /slow,
    /limited (429), /dead (all engines failed), /shapeless (JSON without results)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/{case}/search", self.search)])

    async def search(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.requests.append(params)
        case = request.path_params["case"]
        query = params.get("q", "")
        if case == "ok":
            page = int(params.get("pageno", "1"))
            return JSONResponse(envelope(query, PAGE_1 if page == 1 else PAGE_2 if page == 2 else []))
        if case == "forbidden":
            return HTMLResponse("<html><body><h1>403 Forbidden</h1></body></html>", status_code=403)
        if case == "html":
            return HTMLResponse("<html><body>SearxNG results page</body></html>")
        if case == "broken":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if case == "slow":
            await asyncio.sleep(3)
            return JSONResponse(envelope(query, PAGE_1))
        if case == "limited":
            return PlainTextResponse("Too Many Requests", status_code=429)
        if case == "dead":
            return JSONResponse(
                envelope(query, [], unresponsive=[["brave", "timeout"], ["google", "CAPTCHA"]])
            )
        return JSONResponse({"query": query, "answers": []})


@pytest.fixture(scope="module")
def searxng() -> Iterator[tuple[str, FakeSearxng]]:
    fake = FakeSearxng()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the local SearxNG stand-in did not start"
    host, port = sock.getsockname()
    yield f"http://{host}:{port}", fake
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def run_search(base_url: str, query: str = "otters", k: int = 5, **options: Any) -> list[Any]:
    async def scenario() -> list[Any]:
        async with SearxngSearch(base_url, **options) as backend:
            return await backend.search(query, k=k)

    return asyncio.run(scenario())


def test_results_are_normalized_in_searxng_order(searxng: tuple[str, FakeSearxng]) -> None:
    base, fake = searxng
    fake.requests.clear()
    results = run_search(f"{base}/ok/", k=3)  # a trailing slash in the configured URL is fine

    assert [r.doc_id for r in results] == [
        "https://en.wikipedia.org/wiki/Otter",
        "https://www.example.org/otters",
        "https://otters.example.net/",
    ]
    first = results[0]
    assert first.url == first.doc_id
    assert first.title == "Otter - Wikipedia"
    assert first.snippet == "Otters are carnivorous mammals."  # whitespace collapsed
    assert first.score == 4.5 and first.rank == 1 and first.backend == "searxng"
    assert first.raw["engine"] == "wikipedia" and first.raw["positions"] == [1, 3]
    assert first.text is None
    assert results[2].title == "https://otters.example.net/"  # no title: the URL stands in
    assert [r.rank for r in results] == [1, 2, 3]
    assert fake.requests == [{"q": "otters", "format": "json", "pageno": "1"}]


def test_larger_k_reads_the_next_page_without_duplicates(searxng: tuple[str, FakeSearxng]) -> None:
    base, fake = searxng
    fake.requests.clear()
    results = run_search(f"{base}/ok", k=10, categories="general", language="en")
    assert [r.doc_id for r in results] == [
        "https://en.wikipedia.org/wiki/Otter",
        "https://www.example.org/otters",
        "https://otters.example.net/",
        "https://zoo.example.com/otter",
    ]
    assert [r.rank for r in results] == [1, 2, 3, 4]
    assert [(r["pageno"], r["categories"], r["language"]) for r in fake.requests] == [
        ("1", "general", "en"),
        ("2", "general", "en"),
    ]


def test_disabled_json_format_says_how_to_enable_it(searxng: tuple[str, FakeSearxng]) -> None:
    base, _ = searxng
    with pytest.raises(SearchError) as excinfo:
        run_search(f"{base}/forbidden")
    message = str(excinfo.value)
    assert "HTTP 403" in message and "formats: [html, json]" in message and "\n" not in message


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("html", "not JSON"),
        ("broken", "answered HTTP 500"),
        ("limited", "limiter: false"),
        ("dead", r"engines failed: brave \(timeout\), google \(CAPTCHA\)"),
        ("shapeless", "without a results list"),
    ],
)
def test_server_side_failures_are_one_line_search_errors(
    searxng: tuple[str, FakeSearxng], case: str, message: str
) -> None:
    base, _ = searxng
    with pytest.raises(SearchError, match=message) as excinfo:
        run_search(f"{base}/{case}")
    assert "\n" not in str(excinfo.value)


def test_timeout_is_a_search_error(searxng: tuple[str, FakeSearxng]) -> None:
    base, _ = searxng
    started = time.monotonic()
    with pytest.raises(SearchError, match=r"did not answer within 0\.3 s"):
        run_search(f"{base}/slow", timeout_s=0.3)
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_a_search_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SearchError, match=f"cannot reach SearxNG at http://127.0.0.1:{port}") as excinfo:
        run_search(f"http://127.0.0.1:{port}")
    assert "\n" not in str(excinfo.value)


def test_injected_client_is_used_and_left_open(searxng: tuple[str, FakeSearxng]) -> None:
    base, _ = searxng

    async def scenario() -> tuple[int, bool]:
        async with httpx.AsyncClient() as client:
            backend = SearxngSearch(f"{base}/ok", client=client)
            assert isinstance(backend, SearchBackend)
            results = await backend.search("otters", k=2)
            await backend.aclose()
            return len(results), client.is_closed

    assert asyncio.run(scenario()) == (2, False)


def test_blank_query_and_bad_settings(searxng: tuple[str, FakeSearxng]) -> None:
    base, fake = searxng
    fake.requests.clear()
    assert run_search(f"{base}/ok", query="   ") == []
    assert fake.requests == []  # no call spent on nothing
    with pytest.raises(ConfigError):
        SearxngSearch("localhost:8888")
    with pytest.raises(ConfigError):
        run_search(f"{base}/ok", k=0)
