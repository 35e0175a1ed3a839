"""The protocols of the research tools: search backends and page readers.

A search returns normalized :class:`SearchResult` rows whatever the backend (the local corpus index,
SearxNG, a commercial API); a reader turns a result into a :class:`Document` whose text the agent reads.
The local corpus can do both at once because its results already carry the passage. The fetcher's page
cache (:class:`PageStore`, :class:`StoredPage`) is storage's: re-exported here for the tools that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from leadline.storage.base import PageStore, StoredPage  # the page store's types belong to storage


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
    linked_from: str = ""
    """Set on a result a search brought because a result above it links to it: that result's id."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The backend's own row, kept for provenance (never an API key)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in recorded steps and the loop's state (``raw`` stays out, and
        ``linked_from`` when empty, so results of a search that follows no link read as before)."""
        out = {name: getattr(self, name) for name in _RESULT_FIELDS}
        if not self.linked_from:
            del out["linked_from"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """The result back from :meth:`to_dict`; other keys (the query a result answered) are ignored."""
        return cls(**{k: data[k] for k in _RESULT_FIELDS if k in data})


_RESULT_FIELDS = ("doc_id", "title", "snippet", "url", "score", "rank", "backend", "text", "linked_from")
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

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        """The top ``k`` results for ``query``, normalized."""

    async def aclose(self) -> None:
        """Release connections."""


@runtime_checkable
class Reader(Protocol):
    """Turns a search result into a document (a corpus lookup, or fetch and extract for the web)."""

    async def read(self, result: SearchResult) -> Document:
        """The document a result points to."""

    async def aclose(self) -> None:
        """Release connections."""


__all__ = ["Document", "PageStore", "Reader", "SearchBackend", "SearchResult", "StoredPage"]
