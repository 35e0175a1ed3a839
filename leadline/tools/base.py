"""The protocols of the research tools: search backends and page readers.

A search returns normalized :class:`SearchResult` rows whatever the backend (the local corpus index,
SearxNG, a commercial API); a reader turns a result into a :class:`Document` whose text the agent reads.
The local corpus can do both at once because its results already carry the passage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """One hit, normalized across backends. ``doc_id`` is a corpus id or the URL."""

    doc_id: str
    title: str
    snippet: str
    url: str = ""
    score: float = 0.0
    rank: int = 0
    backend: str = ""
    text: str | None = None
    """The full passage, when the backend already has it (local corpora)."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The backend's own row, kept for provenance (never an API key)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in recorded steps and the loop's state (``raw`` stays out)."""
        return {name: getattr(self, name) for name in _RESULT_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """The result back from :meth:`to_dict`; other keys (the query a result answered) are ignored."""
        return cls(**{k: data[k] for k in _RESULT_FIELDS if k in data})


_RESULT_FIELDS = ("doc_id", "title", "snippet", "url", "score", "rank", "backend", "text")
"""The fields of a :class:`SearchResult` that its JSON form keeps (all but ``raw``)."""


@dataclass(frozen=True, kw_only=True)
class Document:
    """A read source: what the agent saw and may cite."""

    doc_id: str
    title: str
    text: str
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    """Anything that answers a text query with ranked results."""

    name: str

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Reader(Protocol):
    """Turns a search result into a document (a corpus lookup, or fetch and extract for the web)."""

    async def read(self, result: SearchResult) -> Document: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class StoredPage:
    """A fetched page as kept in the content-addressed page store."""

    url: str
    final_url: str
    status: int
    content_type: str
    sha256: str
    """Hash of ``body``: the content address."""
    body: bytes
    fetched_at: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class PageStore(Protocol):
    """Content-addressed cache of fetched pages, so a re-run or resumed run does not fetch again.

    ``leadline.storage`` implements it on the run database; the fetcher only sees this protocol.
    """

    def get_page(self, url: str) -> StoredPage | None: ...

    def put_page(self, page: StoredPage) -> None:
        """Store a page; bodies with the same sha256 are stored once."""
        ...
