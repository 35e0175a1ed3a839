"""Builds the real components a run uses from :class:`~leadline.config.Settings`.

This is the one place that knows which class serves which setting: an OpenAI-compatible server when a
base URL is given, else the embedded llama.cpp engine; the local corpus index or SearxNG with the web
fetcher; the SQL run store and the LangGraph checkpointer on the same database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from leadline.config import Settings
from leadline.errors import ConfigError
from leadline.llm.base import LLMClient
from leadline.storage.base import RunStore
from leadline.tools.base import Reader, SearchBackend


def make_llm(settings: Settings) -> LLMClient:
    if settings.base_url:
        from leadline.llm.openai_client import OpenAICompatibleClient

        model = None if settings.model in ("", "auto") else settings.model
        return OpenAICompatibleClient(
            settings.base_url, model=model, api_key=settings.api_key, timeout_s=settings.llm_timeout_s
        )
    from leadline.llm.llama_cpp_engine import LlamaCppEngine
    from leadline.llm.models import resolve_model_file

    path = resolve_model_file(settings.model, settings.models_dir)
    return LlamaCppEngine(
        path, name=settings.model, n_ctx=settings.n_ctx, n_threads=settings.n_threads, seed=settings.seed
    )


def make_search(settings: Settings) -> tuple[SearchBackend, Reader | None]:
    if settings.search == "local":
        from leadline.tools.corpus_index import CorpusSearch, resolve_corpus

        backend = CorpusSearch(resolve_corpus(settings.corpus, settings.indexes_dir))
        return backend, backend
    if settings.search == "searxng":
        if not settings.searxng_url:
            raise ConfigError("--search searxng needs --searxng-url URL (or LEADLINE_SEARXNG_URL)")
        from leadline.tools.fetcher import Fetcher
        from leadline.tools.searxng import SearxngSearch

        return SearxngSearch(settings.searxng_url), Fetcher()
    raise ConfigError(f"unknown search backend {settings.search!r}; use 'local' or 'searxng'")


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
