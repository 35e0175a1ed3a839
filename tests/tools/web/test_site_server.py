"""The loopback site: static pages, the SearxNG-format search endpoint, and end-to-end research plumbing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadline.errors import ConfigError
from leadline.tools.fetcher import Fetcher
from leadline.tools.searxng import SearxngSearch
from leadline.tools.site_server import SiteServer, load_site, serve_site, snippet

from .conftest import PAGES, loopback_policy, run

# the shared datasets sit beside the checkout; LEADLINE_DATASETS points elsewhere (a worktree, CI)
BESIDE = Path(__file__).resolve().parents[4] / "shared" / "datasets"
DATASETS = Path(os.environ.get("LEADLINE_DATASETS") or BESIDE)
TARBALL = DATASETS / "web" / "postgresql-15-html.tar.gz"


def test_static_pages_and_robots(site: SiteServer) -> None:
    index = httpx.get(f"{site.url}/")
    assert index.status_code == 200 and "PostgreSQL" in index.text
    assert index.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{site.url}/stylesheet.css").headers["content-type"].startswith("text/css")
    assert httpx.get(f"{site.url}/no-such-page.html").status_code == 404
    assert "Disallow: /private/" in httpx.get(f"{site.url}/robots.txt").text


def test_search_speaks_searxng_json(site: SiteServer) -> None:
    answer = httpx.get(f"{site.url}/search", params={"q": "create a database", "format": "json"}).json()
    assert answer["query"] == "create a database"
    assert {"results", "answers", "suggestions", "unresponsive_engines"} <= set(answer)
    first = answer["results"][0]
    assert first["url"] == f"{site.url}/tutorial-createdb.html"
    assert set(first) >= {"url", "title", "content", "score", "engine"}
    assert first["title"] == "1.3. Creating a Database" and "createdb" in first["content"]
    scores = [row["score"] for row in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    assert httpx.get(f"{site.url}/search", params={"q": "x"}).status_code == 403  # like SearxNG without json
    empty = httpx.get(f"{site.url}/search", params={"q": "zzzqqqxxx", "format": "json"}).json()
    assert empty["results"] == []


def test_searxng_client_and_fetcher_research_the_site_end_to_end(site: SiteServer) -> None:
    async def go() -> Any:
        search = SearxngSearch(site.url)
        async with Fetcher(loopback_policy()) as fetcher:
            try:
                results = await search.search("numeric types storage size", k=3)
                documents = await asyncio.gather(*(fetcher.read(r) for r in results))
            finally:
                await search.aclose()
        return results, documents

    results, documents = run(go())
    assert results[0].url.endswith("/datatype-numeric.html")
    assert "| `smallint` | 2 bytes |" in documents[0].text


def test_load_site_from_a_directory_and_bad_sources(tmp_path: Path) -> None:
    files = load_site(PAGES / "site")
    assert "index.html" in files and "tutorial-join.html" in files
    with pytest.raises(ConfigError):
        load_site(tmp_path / "missing")
    with pytest.raises(ConfigError):
        load_site(tmp_path)  # empty directory


@pytest.mark.skipif(not TARBALL.exists(), reason="shared PostgreSQL manual not present")
def test_the_postgresql_manual_tarball_is_served_with_pages_at_the_root() -> None:
    files = load_site(TARBALL)
    assert sum(name.endswith(".html") for name in files) == 1169
    assert "sql-createtable.html" in files and not any(name.startswith("html/") for name in files)


def test_serve_site_handle_starts_and_stops() -> None:
    server = serve_site(
        {"index.html": b"<html><head><title>Tiny</title></head><body>tiny site</body></html>"}
    )
    try:
        assert httpx.get(f"{server.url}/").text.endswith("tiny site</body></html>")
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/", timeout=1.0)


def test_serve_site_serves_no_adversarial_endpoints() -> None:
    # the hostile endpoints are test helpers (leadline.testing.adversarial_site), not part of serve-site
    with serve_site({"index.html": b"<html><body>tiny site</body></html>"}) as server:
        assert httpx.get(f"{server.url}/_adversarial/gzip-bomb").status_code == 404
        assert httpx.get(f"{server.url}/_adversarial/redirect-private/metadata").status_code == 404


def test_snippet_prefers_the_window_with_query_words() -> None:
    text = "intro " * 200 + "vacuum reclaims storage here " + "outro " * 200
    assert "vacuum reclaims storage" in snippet(text, "vacuum storage", width=120)
