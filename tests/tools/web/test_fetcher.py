"""The fetcher against a real loopback site with hostile endpoints: every failure is a typed FetchError."""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
from typing import Any

import pytest

from leadline.config import Settings
from leadline.errors import BlockedURLError, ConfigError, FetchError
from leadline.tools.base import PageStore, Reader, SearchResult
from leadline.tools.fetcher import (
    Fetcher,
    FetchPolicy,
    HTTPStatusFetchError,
    MemoryPageStore,
)
from leadline.tools.site_server import SiteServer
from leadline.wiring import fetch_policy

from .conftest import fetch_with, loopback_policy, run


def result_for(url: str) -> SearchResult:
    return SearchResult(doc_id=url, title="from search", snippet="", url=url)


def test_fetcher_is_a_reader_and_memory_store_is_a_page_store() -> None:
    assert isinstance(Fetcher(loopback_policy()), Reader)
    assert isinstance(MemoryPageStore(), PageStore)


def test_read_turns_a_page_into_a_document(site: SiteServer) -> None:
    async def go() -> Any:
        async with Fetcher(loopback_policy()) as fetcher:
            return await fetcher.read(result_for(f"{site.url}/datatype-numeric.html"))

    document = run(go())
    assert document.title == "8.1. Numeric Types"
    assert "| `smallint` | 2 bytes |" in document.text
    assert document.url == f"{site.url}/datatype-numeric.html"
    assert document.metadata["content_type"] == "text/html" and len(document.metadata["sha256"]) == 64


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/_adversarial/endless", "too_large"),
        ("/_adversarial/gzip-bomb", "too_large"),
        ("/_adversarial/br-bomb", "too_large"),
        ("/_adversarial/zstd-bomb", "too_large"),
        ("/_adversarial/huge-html", "too_large"),
        ("/_adversarial/huge-html?declared=1", "too_large"),
        ("/_adversarial/redirect-loop/a", "redirect_loop"),
        ("/_adversarial/redirect-chain/9", "too_many_redirects"),
        ("/_adversarial/wrong-type", "content_type"),
        ("/_adversarial/octet-html", "content_type"),
        ("/_adversarial/status/404", "http_404"),
        ("/_adversarial/status/410", "http_410"),
        ("/_adversarial/status/500", "http_500"),
        ("/_adversarial/truncated", "truncated"),
        ("/private/notes.html", "robots"),
    ],
)
def test_hostile_endpoints_end_in_typed_errors(site: SiteServer, path: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        run(fetch_with(loopback_policy(), f"{site.url}{path}"))
    assert caught.value.reason == reason
    assert caught.value.url.startswith(site.url)
    assert time.monotonic() - started < 4.0


def test_a_slow_drip_stops_at_the_total_deadline(site: SiteServer) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        run(fetch_with(loopback_policy(deadline_s=1.0), f"{site.url}/_adversarial/slow-drip?interval=0.05"))
    elapsed = time.monotonic() - started
    # Every read gets a byte well inside the read timeout, so only the total deadline can stop it.
    assert caught.value.reason == "deadline"
    assert 0.9 < elapsed < 2.5


def test_a_gzip_bomb_is_stopped_without_inflating_it(site: SiteServer) -> None:
    run(fetch_with(loopback_policy(), f"{site.url}/index.html"))  # warm up imports and the server
    tracemalloc.start()
    try:
        with pytest.raises(FetchError):
            run(fetch_with(loopback_policy(max_bytes=2_000_000), f"{site.url}/_adversarial/gzip-bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # the bomb inflates to 100 MB; we never hold more than a few caps


def test_redirects_are_followed_up_to_the_limit(site: SiteServer) -> None:
    page = run(fetch_with(loopback_policy(), f"{site.url}/_adversarial/redirect-chain/3"))
    assert page.final_url == f"{site.url}/index.html" and len(page.redirects) == 4
    with pytest.raises(FetchError):
        run(fetch_with(loopback_policy(max_redirects=2), f"{site.url}/_adversarial/redirect-chain/3"))


def test_transient_failures_are_retried_and_permanent_ones_are_not(site: SiteServer) -> None:
    hits = site.app.hits
    page = run(fetch_with(loopback_policy(), f"{site.url}/_adversarial/flaky/retry503?fail=2&status=503"))
    assert b"Recovered after 2 failures" in page.body and hits["retry503"] == 3

    with pytest.raises(HTTPStatusFetchError) as caught:
        run(fetch_with(loopback_policy(), f"{site.url}/_adversarial/flaky/always502?fail=9&status=502"))
    assert caught.value.status == 502 and hits["always502"] == 3  # attempts=3, then give up

    with pytest.raises(HTTPStatusFetchError):
        run(fetch_with(loopback_policy(), f"{site.url}/_adversarial/flaky/once404?fail=1&status=404"))
    assert hits["once404"] == 1


def test_retry_after_is_honoured_or_refused_when_too_long(site: SiteServer) -> None:
    started = time.monotonic()
    page = run(
        fetch_with(loopback_policy(), f"{site.url}/_adversarial/flaky/wait1?fail=1&status=429&retry_after=1")
    )
    assert page.status == 200 and time.monotonic() - started >= 1.0
    with pytest.raises(FetchError) as caught:
        run(
            fetch_with(
                loopback_policy(), f"{site.url}/_adversarial/flaky/wait99?fail=1&status=429&retry_after=99"
            )
        )
    assert caught.value.reason == "rate_limited"


def test_connection_refused_is_a_typed_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(FetchError) as caught:
            run(fetch_with(loopback_policy(attempts=1), f"http://127.0.0.1:{port}/"))
    assert caught.value.reason == "connect"


@pytest.mark.parametrize(
    "url", ["http://exa mple.org/", "http://[::1/", "https://", "mailto:a@b.c", "http://example.org:99999/"]
)
def test_malformed_urls_are_typed_errors(url: str) -> None:
    with pytest.raises(FetchError):
        run(fetch_with(loopback_policy(), url))


def test_robots_can_be_switched_off_for_owned_sites(site: SiteServer) -> None:
    with pytest.raises(BlockedURLError):
        run(fetch_with(loopback_policy(), f"{site.url}/private/notes.html"))
    with pytest.raises(HTTPStatusFetchError):  # not blocked any more: the page just does not exist
        run(fetch_with(loopback_policy(respect_robots=False), f"{site.url}/private/notes.html"))


def test_page_store_serves_reruns_without_fetching(site: SiteServer) -> None:
    store = MemoryPageStore()
    url = f"{site.url}/_adversarial/flaky/stored?fail=0"

    async def go() -> Any:
        async with Fetcher(loopback_policy(), store=store) as fetcher:
            return await fetcher.fetch(url), await fetcher.fetch(url)

    first, second = run(go())
    again = run(fetch_with(loopback_policy(), url, store=store))  # a new fetcher, as in a resumed run
    assert site.app.hits["stored"] == 1
    assert not first.from_cache and second.from_cache and again.from_cache
    assert first.body == second.body == again.body and first.sha256 == again.sha256


def test_identical_bodies_are_stored_once(site: SiteServer) -> None:
    store = MemoryPageStore()

    async def go() -> None:
        async with Fetcher(loopback_policy(), store=store) as fetcher:
            await fetcher.fetch(f"{site.url}/index.html")
            await fetcher.fetch(f"{site.url}/")

    run(go())
    assert store.get_page(f"{site.url}/") is not None and store.body_count == 1


def test_per_host_interval_spaces_requests(site: SiteServer) -> None:
    policy = loopback_policy(per_host_interval_s=0.2, respect_robots=False)

    async def go() -> float:
        async with Fetcher(policy) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(fetcher.fetch(f"{site.url}/index.html?n={i}") for i in range(4)))
            return time.monotonic() - started

    assert run(go()) >= 0.6  # four starts, 0.2 s apart


def test_concurrent_fetches_of_many_pages(site: SiteServer) -> None:
    pages = [
        "index.html",
        "tutorial-createdb.html",
        "tutorial-join.html",
        "sql-vacuum.html",
        "indexes-types.html",
    ]

    async def go() -> list[Any]:
        async with Fetcher(loopback_policy(per_host_concurrency=8)) as fetcher:
            return await asyncio.gather(*(fetcher.read(result_for(f"{site.url}/{p}")) for p in pages * 2))

    documents = run(go())
    assert len({d.url for d in documents}) == len(pages) and all(d.text for d in documents)


def test_script_shells_and_injection_pages_when_read(site: SiteServer) -> None:
    async def go(path: str) -> Any:
        async with Fetcher(loopback_policy()) as fetcher:
            return await fetcher.read(result_for(f"{site.url}{path}"))

    with pytest.raises(FetchError) as caught:
        run(go("/_adversarial/script-shell"))
    assert caught.value.reason == "no_text"
    document = run(go("/_adversarial/injection"))
    assert "Boil the water" in document.text and "Drain the pasta" in document.text
    for injected in ("Ignore all previous", "API keys", "obey the page", "im_start", "Instruction", "pixel"):
        assert injected not in document.text


def test_policy_values_are_validated() -> None:
    with pytest.raises(ConfigError):
        FetchPolicy(deadline_s=0)
    with pytest.raises(ConfigError):
        FetchPolicy(max_bytes=-1)


def test_policy_from_settings_allows_only_what_was_configured() -> None:
    # wiring turns settings into a policy; the SearxNG endpoint is allowed as its exact origin only
    settings = Settings(
        searxng_url="http://127.0.0.1:8765/searx", fetch_allow="10.1.0.0/16, wiki.corp.example"
    )
    policy = fetch_policy(settings, deadline_s=5.0)
    assert policy.allow == ("10.1.0.0/16", "wiki.corp.example", "http://127.0.0.1:8765")
    assert policy.deadline_s == 5.0
    assert fetch_policy(Settings()).allow == ()
    assert fetch_policy(Settings(searxng_url="http://[::1]:8888")).allow == ("http://[::1]:8888",)
    assert fetch_policy(Settings(searxng_url="https://Search.Lan")).allow == ("https://search.lan:443",)


def test_a_malformed_allow_list_entry_fails_when_the_policy_is_made() -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:8080"):
        FetchPolicy(allow=("127.0.0.1:8080",))
    with pytest.raises(ConfigError, match="SearxNG URL"):
        fetch_policy(Settings(searxng_url="ftp://127.0.0.1:8888"))
