"""Builds the real components a run uses from :class:`~leadline.config.Settings`.

This is the one place that knows which class serves which setting: an OpenAI-compatible server when a
base URL is given, else the embedded llama.cpp engine; the local corpus index or SearxNG with the web
fetcher; the SQL run store and the LangGraph checkpointer on the same database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from leadline.config import DEFAULT_MODEL, Settings
from leadline.errors import ConfigError
from leadline.llm.base import LLMClient
from leadline.storage.base import RunStore
from leadline.tools.base import PageStore, Reader, SearchBackend


def make_llm(settings: Settings) -> LLMClient:
    if settings.base_url:
        from leadline.llm.openai_client import OpenAICompatibleClient

        # the embedded default's name means nothing to a server: let the client ask the server
        model = None if settings.model in ("", "auto", DEFAULT_MODEL) else settings.model
        return OpenAICompatibleClient(
            settings.base_url, model=model, api_key=settings.api_key, timeout_s=settings.llm_timeout_s
        )
    from leadline.llm.llama_cpp_engine import LlamaCppEngine
    from leadline.llm.models import resolve_model_file

    path = resolve_model_file(settings.model, settings.models_dir, n_ctx=settings.n_ctx)
    return LlamaCppEngine(
        path, name=settings.model, n_ctx=settings.n_ctx, n_threads=settings.n_threads, seed=settings.seed
    )


WEB_BACKENDS = ("searxng", "tavily", "brave", "exa", "duckduckgo", "ddg")


def _web_backend(name: str, settings: Settings) -> SearchBackend:
    if name == "searxng":
        if not settings.searxng_url:
            raise ConfigError("--search searxng needs --searxng-url URL (or LEADLINE_SEARXNG_URL)")
        from leadline.tools.searxng import SearxngSearch

        return SearxngSearch(settings.searxng_url)
    from leadline.tools.web_backends import web_backend

    return web_backend(name, settings)


def make_search(
    settings: Settings, *, page_store: PageStore | None = None
) -> tuple[SearchBackend, Reader | None]:
    """The search backend and the reader behind its results (the corpus itself, or the web fetcher)."""
    names = [n.strip().lower() for n in settings.search.split(",") if n.strip()]
    if names == ["local"]:
        from leadline.tools.corpus_index import CorpusSearch, resolve_corpus

        backend = CorpusSearch(resolve_corpus(settings.corpus, settings.indexes_dir))
        return backend, backend
    unknown = [n for n in names if n not in WEB_BACKENDS]
    if not names or unknown:
        raise ConfigError(
            f"unknown search backend {', '.join(unknown) or settings.search!r}; "
            f"use local or {', '.join(WEB_BACKENDS[:-1])} (a comma list is a fallback chain)"
        )
    from leadline.tools.fetcher import Fetcher, fetch_policy_from

    backends = [_web_backend(n, settings) for n in names]
    if len(backends) == 1:
        search = backends[0]
    else:
        from leadline.tools.fallback import FallbackSearch

        search = FallbackSearch(backends)
    return search, Fetcher(fetch_policy_from(settings), store=page_store)


def make_store(settings: Settings) -> RunStore:
    from leadline.storage.store import SqlRunStore

    return SqlRunStore.from_url(settings.database_url)


@contextlib.asynccontextmanager
async def open_checkpointer(store: RunStore, settings: Settings) -> AsyncIterator[Any]:
    """A LangGraph checkpointer on the run database, or the store's own (an in-memory store has one)."""
    own = getattr(store, "checkpointer", None)
    if own is not None:
        yield own
        return
    from leadline.storage.checkpoint import open_checkpointer as open_sql_checkpointer

    async with open_sql_checkpointer(settings.database_url) as saver:
        yield saver
