"""The test helpers of leadline.testing: the no-real-io switch and the fake fetcher."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx
import pytest

from leadline.errors import FetchError
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.testing import FakeFetcher, RealResourceUsed, no_real_io
from leadline.testing.isolation import Isolation
from leadline.testing.ssrf_canary import Canary
from leadline.tools.base import Reader, SearchResult


def test_a_real_connection_fails_inside_the_switch_even_when_swallowed() -> None:
    with pytest.raises(RealResourceUsed, match=r"10\.0\.0\.1:80"), no_real_io():  # noqa: SIM117
        with contextlib.suppress(Exception):  # code that hides errors must not hide this one
            socket.create_connection(("10.0.0.1", 80), timeout=0.1)
    with pytest.raises(RealResourceUsed, match=r"name lookup of 'example\.com'"), no_real_io():
        httpx.get("http://example.com/", timeout=0.5)


def test_loopback_servers_the_test_allowed_are_reachable_and_others_are_not() -> None:
    with Canary(ipv6=False) as canary, Canary(ipv6=False) as other:
        with no_real_io(allow_ports=[canary.port]) as guard:
            assert httpx.get(f"http://127.0.0.1:{canary.port}/").status_code == 200
            assert httpx.get(f"http://localhost:{canary.port}/").status_code == 200
            with pytest.raises(RealResourceUsed):
                httpx.get(f"http://127.0.0.1:{other.port}/")
            guard.refused.clear()  # refused on purpose here; the block would fail on exit otherwise
        assert canary.hits == 2 and other.hits == 0


def test_a_real_model_load_fails_inside_the_switch() -> None:
    with pytest.raises(RealResourceUsed, match="loading the model"), no_real_io():
        LlamaCppEngine("/nowhere/model.gguf")


def test_joining_a_packaged_models_parts_fails_inside_the_switch(tmp_path: Path) -> None:
    from leadline.llm import models

    name = next(iter(models.PACKAGED_MODELS))
    with pytest.raises(RealResourceUsed, match="assembling the packaged model"), no_real_io():
        models.resolve_model_file(name, tmp_path, n_ctx=512)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_the_switch_restores_everything_on_exit() -> None:
    from leadline.llm import models

    connect, getaddrinfo, init = socket.socket.connect, socket.getaddrinfo, LlamaCppEngine.__init__
    assemble = models.assemble
    with no_real_io() as guard:
        assert socket.getaddrinfo is not getaddrinfo and models.assemble is not assemble
    assert isinstance(guard, Isolation) and guard.refused == [] and models.assemble is assemble
    assert (socket.socket.connect, socket.getaddrinfo, LlamaCppEngine.__init__) == (
        connect,
        getaddrinfo,
        init,
    )


def test_the_fixture_is_available_to_tests(no_real_io: Isolation) -> None:
    with pytest.raises(RealResourceUsed):
        socket.getaddrinfo("example.org", 443)
    no_real_io.refused.clear()


def test_fake_fetcher_serves_scripted_pages_and_records_every_fetch() -> None:
    broken = FetchError("refused", url="http://b.test/", reason="ssrf:private")
    fetcher = FakeFetcher({"http://a.test/": "Page A text.", "http://b.test/": broken})
    assert isinstance(fetcher, Reader)

    async def go() -> None:
        document = await fetcher.read(SearchResult(doc_id="a", title="A", snippet="", url="http://a.test/"))
        assert (document.text, document.title, document.url) == ("Page A text.", "A", "http://a.test/")
        page = await fetcher.fetch("http://a.test/")
        assert page.status == 200 and page.body == b"Page A text." and page.mime == "text/plain"
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch("http://b.test/")
        assert caught.value is broken
        with pytest.raises(FetchError) as missing:
            await fetcher.read(SearchResult(doc_id="c", title="", snippet="", url="http://c.test/"))
        assert missing.value.reason == "http_404"
        await fetcher.aclose()

    with no_real_io():
        asyncio.run(go())
    assert fetcher.fetched == ["http://a.test/", "http://a.test/", "http://b.test/", "http://c.test/"]
    assert fetcher.count("http://a.test/") == 2 and fetcher.closed
