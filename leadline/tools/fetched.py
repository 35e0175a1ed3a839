"""A fetched page and the in-memory page store: what the fetcher hands back and where pages are kept.

:class:`FetchedPage` converts to and from the :class:`~leadline.storage.base.StoredPage` of a
content-addressed :class:`~leadline.storage.base.PageStore` (the run database implements one; the memory
store here serves tests and one-off fetchers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from leadline.storage.base import StoredPage


def mime_of(content_type: str) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def charset_of(content_type: str) -> str | None:
    """The charset parameter of a Content-Type header, or None."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'").lower()
    return None


@dataclass(frozen=True, kw_only=True)
class FetchedPage:
    """A fetched body and what we know about it. ``sha256`` is the content address of ``body``."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes = field(repr=False)
    sha256: str
    headers: dict[str, str] = field(default_factory=dict)
    redirects: tuple[str, ...] = ()
    from_cache: bool = False
    elapsed_s: float = 0.0

    @property
    def mime(self) -> str:
        """The page's media type."""
        return mime_of(self.content_type)

    @property
    def charset(self) -> str | None:
        """The page's declared charset, or None."""
        return charset_of(self.content_type)

    def to_stored(self) -> StoredPage:
        """The page as the page store keeps it."""
        return StoredPage(
            url=self.url,
            final_url=self.final_url,
            status=self.status,
            content_type=self.content_type,
            sha256=self.sha256,
            body=self.body,
            fetched_at=time.time(),
            headers=dict(self.headers),
        )

    @classmethod
    def from_stored(cls, page: StoredPage) -> FetchedPage:
        """A page from the page store, as the fetcher hands it back."""
        return cls(
            url=page.url,
            final_url=page.final_url,
            status=page.status,
            content_type=page.content_type,
            body=page.body,
            sha256=page.sha256,
            headers=dict(page.headers),
            from_cache=True,
        )


class MemoryPageStore:
    """An in-memory :class:`PageStore`: bodies kept once per sha256, URLs pointing at them."""

    def __init__(self) -> None:
        self._pages: dict[str, StoredPage] = {}
        self._bodies: dict[str, bytes] = {}

    def get_page(self, url: str) -> StoredPage | None:
        """The stored page for ``url``, or None."""
        return self._pages.get(url)

    def put_page(self, page: StoredPage) -> None:
        """Store a page; bodies with the same sha256 are kept once."""
        body = self._bodies.setdefault(page.sha256, page.body)
        stored = StoredPage(
            url=page.url,
            final_url=page.final_url,
            status=page.status,
            content_type=page.content_type,
            sha256=page.sha256,
            body=body,
            fetched_at=page.fetched_at,
            headers=dict(page.headers),
        )
        self._pages[page.url] = stored
        if page.final_url != page.url:
            self._pages.setdefault(page.final_url, stored)

    @property
    def body_count(self) -> int:
        """Distinct bodies held (for tests of the content addressing)."""
        return len(self._bodies)


__all__ = ["FetchedPage", "MemoryPageStore", "charset_of", "mime_of"]
