"""Fixtures for web tests: a real site server on 127.0.0.1 and fetchers allowed to reach it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from leadline.testing.adversarial_site import serve_adversarial_site
from leadline.tools.fetcher import Fetcher, FetchPolicy
from leadline.tools.site_server import SiteServer

PAGES = Path(__file__).parent / "pages"
RECORDED = Path(__file__).parent / "recorded"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def site() -> Iterator[SiteServer]:
    """The saved PostgreSQL pages plus the adversarial endpoints, on an ephemeral loopback port."""
    server = serve_adversarial_site(PAGES / "site")
    yield server
    server.stop()


def loopback_policy(**changes: Any) -> FetchPolicy:
    """A policy for tests: loopback explicitly allowed, short deadlines, small caps, fast retries."""
    values: dict[str, Any] = {
        "allow": ("127.0.0.1",),
        "deadline_s": 5.0,
        "max_bytes": 1_000_000,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
    }
    values.update(changes)
    return FetchPolicy(**values)


async def fetch_with(policy: FetchPolicy, url: str, **kwargs: Any) -> Any:
    async with Fetcher(policy, **kwargs) as fetcher:
        return await fetcher.fetch(url)
