"""A search service on loopback must not open loopback to page fetches (issue 9).

A hostile SearxNG-format endpoint on a loopback port returns results pointing at a canary on another
loopback port, in every spelling we know, directly and through redirects from the endpoint's own
origin. Wired exactly as ``leadline ask --search searxng --searxng-url URL`` wires it, the canary must
see no connection at all (not even for robots.txt), while results on the endpoint's own origin are read.
The same runs with the endpoint on ``127.0.0.1``, ``localhost`` and ``[::1]``. A positive control with
loopback opened on purpose shows that the spellings do reach the canary, so the main test is not vacuous.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from leadline import Budget, Researcher
from leadline.config import Settings
from leadline.errors import BlockedURLError, FetchError
from leadline.testing import MemoryRunStore, ScriptedLLM
from leadline.testing.ssrf_canary import Canary, HostileSearxngApp
from leadline.tools.base import Document, Reader, SearchBackend, SearchResult
from leadline.tools.fetcher import Fetcher, FetchPolicy
from leadline.tools.site_server import SiteServer, load_site
from leadline.wiring import make_search

from .conftest import PAGES, run

OWN_PAGE = "/tutorial-createdb.html"
OWN_TEXT = "try to create a database"


def canary_spellings(port: int, search_host: str, search_port: int) -> list[str]:
    """URLs that name the canary (127.0.0.1 and ::1 on ``port``) in as many spellings as we know."""
    c = port
    bracketed = f"[{search_host}]" if ":" in search_host else search_host
    spellings = [
        f"http://127.0.0.1:{c}/",
        f"http://localhost:{c}/",
        f"http://LocalHost:{c}/",
        f"http://localhost.:{c}/",  # trailing dots
        f"http://127.0.0.1.:{c}/",
        f"http://{bracketed}:{c}/",  # the search endpoint's own host, another port
        f"http://127.1:{c}/",  # short forms
        f"http://127.0.1:{c}/",
        f"http://2130706433:{c}/",  # integer
        f"http://0x7f000001:{c}/",  # hex
        f"http://0x7f.0.0.1:{c}/",
        f"http://017700000001:{c}/",  # octal
        f"http://0177.0.0.1:{c}/",
        f"http://127.000.000.001:{c}/",
        f"http://0:{c}/",  # the unspecified address connects to this host on Linux
        f"http://0.0.0.0:{c}/",
        f"http://127。0。0。1:{c}/",  # ideographic full stops, normalized by IDNA
        f"http://[::1]:{c}/",  # IPv6 literals
        f"http://[0:0:0:0:0:0:0:1]:{c}/",
        f"http://[::ffff:127.0.0.1]:{c}/",
        f"http://[::ffff:7f00:1]:{c}/",
        f"http://[::]:{c}/",
        f"http://[::1%25lo]:{c}/",
        f"http://user:secret@127.0.0.1:{c}/",  # userinfo
        f"http://{bracketed}:{search_port}@127.0.0.1:{c}/",
        f"http://{bracketed}:{search_port}@localhost:{c}/",
        f"https://127.0.0.1:{c}/",
        f"http://127.0.0.1:{c}/robots.txt",
    ]
    return list(dict.fromkeys(spellings))  # the endpoint's own host may repeat one


def hostile_results(canary: Canary, search_host: str, search_port: int) -> list[str]:
    direct = canary_spellings(canary.port, search_host, search_port)
    redirected = ["{origin}/redirect?to=" + quote(url, safe="") for url in direct]
    return [f"{{origin}}{OWN_PAGE}", *direct, *redirected, "{origin}/index.html"]


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return load_site(PAGES / "site")


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as running:
        yield running


def start_endpoint(
    files: dict[str, bytes], canary: Canary, host: str, **options: Any
) -> tuple[SiteServer, str]:
    """The hostile endpoint on ``host`` (``localhost`` binds 127.0.0.1) and its URL as a user writes it."""
    bind = "127.0.0.1" if host == "localhost" else host
    # bind first to learn the port, then fill the templates that name it
    app = HostileSearxngApp(files, [], **options)
    server = SiteServer(app, host=bind).start()
    url_host = f"[{host}]" if ":" in host else host
    app.result_templates = hostile_results(canary, host, server.port)
    return server, f"http://{url_host}:{server.port}"


async def search_and_read_all(search: SearchBackend, reader: Reader) -> list[tuple[SearchResult, Any]]:
    try:
        results = await search.search("how do I create a database", k=500)
        outcomes = await asyncio.gather(*(reader.read(r) for r in results), return_exceptions=True)
        return list(zip(results, outcomes, strict=True))
    finally:
        await search.aclose()
        await reader.aclose()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_results_pointing_at_another_loopback_port_never_reach_it(
    files: dict[str, bytes], canary: Canary, host: str
) -> None:
    server, endpoint = start_endpoint(files, canary, host)
    try:
        search, reader = make_search(Settings(search="searxng", searxng_url=endpoint))
        assert reader is not None
        read = run(search_and_read_all(search, reader))
    finally:
        server.stop()
    assert canary.connections == []
    own_urls = [f"{endpoint}{OWN_PAGE}", f"{endpoint}/index.html"]
    hostile = [(r, o) for r, o in read if r.url not in own_urls]
    own = [(r, o) for r, o in read if r.url in own_urls]
    assert len(hostile) == 2 * len(canary_spellings(canary.port, host, server.port))
    for result, outcome in hostile:
        assert isinstance(outcome, FetchError), f"{result.url} was read: {outcome!r}"
    # the few that are not refused by the guard fail before any connection: URLs httpx cannot parse
    # (0177.0.0.1, 127.000.000.001; not retried) and names the resolver does not know (localhost.)
    others = {r.url: o.reason for r, o in hostile if not isinstance(o, BlockedURLError)}
    assert set(others.values()) <= {"dns", "malformed_url"}, others
    assert len(others) <= 10, others
    # results on the endpoint's own origin are still read
    assert [r.url for r, _ in own] == own_urls
    documents = [o for _, o in own]
    assert all(isinstance(d, Document) for d in documents), documents
    assert OWN_TEXT in documents[0].text


def test_a_robots_txt_redirect_to_another_port_is_refused_too(
    files: dict[str, bytes], canary: Canary
) -> None:
    server, endpoint = start_endpoint(
        files, canary, "127.0.0.1", robots_redirect=f"http://localhost:{canary.port}/robots.txt"
    )
    page = SearchResult(doc_id="x", title="", snippet="", url=f"{endpoint}{OWN_PAGE}")
    try:
        _, reader = make_search(Settings(search="searxng", searxng_url=endpoint))
        assert reader is not None

        async def go() -> Any:
            try:
                return await reader.read(page)
            finally:
                await reader.aclose()

        with pytest.raises(BlockedURLError):
            run(go())
    finally:
        server.stop()
    assert canary.connections == []


def test_control_with_loopback_opened_the_spellings_do_reach_the_canary(
    files: dict[str, bytes], canary: Canary
) -> None:
    # Without this, "the canary saw nothing" could mean the URLs never pointed at it.
    server, endpoint = start_endpoint(files, canary, "127.0.0.1")
    wide_open = FetchPolicy(
        allow=("127.0.0.0/8", "::1", "0.0.0.0", "::", "::ffff:127.0.0.0/104"),
        deadline_s=5.0,
        attempts=1,
    )
    reached: dict[str, bool] = {}

    async def probe(url: str) -> None:
        async with Fetcher(wide_open) as fetcher:
            canary.reset()
            with contextlib.suppress(FetchError):
                await fetcher.fetch(url)
            reached[url] = canary.hits > 0

    try:
        for url in canary_spellings(canary.port, "127.0.0.1", server.port):
            run(probe(url))
            run(probe(f"{endpoint}/redirect?to={quote(url, safe='')}"))
    finally:
        server.stop()
    c = canary.port
    must_reach = [
        f"http://127.0.0.1:{c}/",
        f"http://localhost:{c}/",
        f"http://127.1:{c}/",
        f"http://2130706433:{c}/",
        f"http://0x7f000001:{c}/",
        f"http://0x7f.0.0.1:{c}/",
        f"http://017700000001:{c}/",
        f"http://[::1]:{c}/",
        f"http://[::ffff:127.0.0.1]:{c}/",
        f"http://user:secret@127.0.0.1:{c}/",
        f"{endpoint}@127.0.0.1:{c}/",  # the search origin as userinfo
        f"{endpoint}/redirect?to={quote(f'http://127.0.0.1:{c}/', safe='')}",
        f"{endpoint}/redirect?to={quote(f'http://[::1]:{c}/', safe='')}",
        f"{endpoint}/redirect?to={quote(f'http://2130706433:{c}/', safe='')}",
    ]
    assert [url for url in must_reach if not reached[url]] == []
    # most of the spellings reach it (here all but the unparsable and unresolvable ones)
    assert sum(reached.values()) >= len(reached) * 2 // 3, reached


def test_a_research_run_wired_like_ask_reads_the_endpoint_pages_and_never_the_canary(
    files: dict[str, bytes], canary: Canary
) -> None:
    # the whole loop, as `leadline ask --search searxng --searxng-url URL` runs it, reading every result
    def respond(messages: Any, params: Any) -> str:
        prompt = messages[-1].content
        if '"queries"' in prompt:
            return json.dumps({"queries": ["create a database"]})
        if '"next_query"' in prompt:
            return json.dumps({"known": "createdb creates one", "answer_so_far": "", "next_query": ""})
        return json.dumps({"answer": "with createdb", "sources": [1]})

    server, endpoint = start_endpoint(files, canary, "localhost")
    try:
        settings = Settings(search="searxng", searxng_url=endpoint)
        with Researcher(settings, llm=ScriptedLLM(respond), store=MemoryRunStore(), search_k=100) as r:
            result = r.research("How do I create a database?", budget=Budget(tokens=600, searches=1))
    finally:
        server.stop()
    assert canary.connections == []
    assert result.answer == "with createdb"
    assert [c.url for c in result.citations] == [f"{endpoint}{OWN_PAGE}"]
    reads = [t["detail"] for t in result.trace if t["node"] == "read"]
    assert reads and reads[0].startswith("2 sources read, ") and "ssrf:loopback" in reads[0]
