"""A fake web fetcher: pages from a dict, every fetch recorded, no network.

:class:`FakeFetcher` stands where :class:`~leadline.tools.fetcher.Fetcher` stands (a
:class:`~leadline.tools.base.Reader` with ``fetch``), beside :class:`~leadline.testing.FakeSearch`: a
test of a loop over web results scripts the pages (text, or an exception such as a
:class:`~leadline.errors.FetchError` to raise) and then asserts which URLs were fetched, and how often.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from leadline.errors import FetchError
from leadline.tools.base import Document, SearchResult
from leadline.tools.fetched import FetchedPage


@dataclass
class FakeFetcher:
    """A :class:`~leadline.tools.base.Reader` over scripted pages, keyed by URL.

    A page is its text (served as ``text/plain``) or an exception to raise. A URL not in ``pages`` is a
    :class:`FetchError` with ``reason="http_404"``. ``fetched`` lists every URL asked for, in order.
    """

    pages: Mapping[str, str | BaseException]
    name: str = "fake-web"
    fetched: list[str] = field(default_factory=list)
    closed: bool = False

    async def fetch(self, url: str) -> FetchedPage:
        """The scripted page at ``url`` as a :class:`FetchedPage`, or its scripted error."""
        self.fetched.append(url)
        page = self.pages.get(url)
        if page is None:
            raise FetchError(f"{url} answered HTTP 404", url=url, reason="http_404")
        if isinstance(page, BaseException):
            raise page
        body = page.encode("utf-8")
        return FetchedPage(
            url=url,
            final_url=url,
            status=200,
            content_type="text/plain; charset=utf-8",
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
        )

    async def read(self, result: SearchResult) -> Document:
        """Fetch a search result's page and return its text as a :class:`Document`."""
        url = result.url or result.doc_id
        page = await self.fetch(url)
        text = page.body.decode("utf-8")
        if not text.strip():
            raise FetchError(f"no readable text at {url}", url=url, reason="no_text")
        return Document(doc_id=url, title=result.title or url, text=text, url=url)

    def count(self, url: str) -> int:
        """How many times ``url`` was fetched."""
        return self.fetched.count(url)

    async def aclose(self) -> None:
        """Mark the fetcher closed (tests can assert the loop closed its reader)."""
        self.closed = True


__all__ = ["FakeFetcher"]
