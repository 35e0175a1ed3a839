"""Research tools: search backends (local corpus, SearxNG, web APIs), the web fetcher and extraction."""

from leadline.tools.base import Document, PageStore, Reader, SearchBackend, SearchResult, StoredPage
from leadline.tools.demo import demo_corpus_path

__all__ = [
    "Document",
    "PageStore",
    "Reader",
    "SearchBackend",
    "SearchResult",
    "StoredPage",
    "demo_corpus_path",
]
