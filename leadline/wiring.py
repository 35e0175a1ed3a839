"""Builds the real components a run uses from :class:`~leadline.config.Settings`.

This is the one place that knows which class serves which setting: an OpenAI-compatible server when a
base URL is given, else the embedded llama.cpp engine; the local corpus index or SearxNG with the web
fetcher; the SQL run store and the LangGraph checkpointer on the same database. The tools below never
read settings themselves: they take explicit arguments (a :class:`FetchPolicy`, an API key), made here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from leadline.config import DEFAULT_MODEL, Settings, origin_of, parse_fetch_allow
from leadline.errors import ConfigError
from leadline.llm.base import LLMClient
from leadline.storage.base import RunStore
from leadline.tools.base import PageStore, Reader, SearchBackend
from leadline.tools.fetch_policy import FetchPolicy


def make_llm(settings: Settings) -> LLMClient:
    """The LLM client the settings ask for: an OpenAI-compatible server when a base URL is set, else the
    embedded llama.cpp engine; wrapped in tracing spans when OpenTelemetry is on.
    """
    from leadline.agent.tracing import TracedLLM, enabled

    llm = _make_llm(settings)
    return TracedLLM(llm) if enabled() else llm


def _make_llm(settings: Settings) -> LLMClient:
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

    keys = {"tavily": settings.tavily_api_key, "brave": settings.brave_api_key, "exa": settings.exa_api_key}
    return web_backend(name, api_key=keys.get(name))


def fetch_policy(settings: Settings, **overrides: Any) -> FetchPolicy:
    """The fetch policy of a run; ``overrides`` set other :class:`FetchPolicy` fields.

    The SSRF allow-list holds only what the user configured explicitly: ``settings.fetch_allow`` as
    written (a bare host, address or network opens every port), and the SearxNG endpoint as its exact
    origin (``scheme://host:port``): the service the user pointed us at, whose own result pages we are
    meant to read (``leadline serve-site`` serves them from that origin), but never the rest of its host.
    Search results are untrusted, so a result pointing at another port of the same machine is refused.
    """
    allow = [str(entry) for entry in parse_fetch_allow(settings.fetch_allow)]
    if settings.searxng_url:
        origin = str(origin_of(settings.searxng_url, what="SearxNG URL"))
        if origin not in allow:
            allow.append(origin)
    values: dict[str, Any] = {"allow": tuple(allow), **overrides}
    return FetchPolicy(**values)


def make_search(
    settings: Settings, *, page_store: PageStore | None = None
) -> tuple[SearchBackend, Reader | None]:
    """The search backend and the reader behind its results (the corpus itself, or the web fetcher)."""
    from leadline.agent.tracing import TracedSearch, enabled

    search, reader = _make_search(settings, page_store=page_store)
    if enabled():
        traced = TracedSearch(search, reader)
        return traced, traced if reader is not None else None
    return search, reader


def _make_search(
    settings: Settings, *, page_store: PageStore | None = None
) -> tuple[SearchBackend, Reader | None]:
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
    from leadline.tools.fetcher import Fetcher

    backends = [_web_backend(n, settings) for n in names]
    if len(backends) == 1:
        search = backends[0]
    else:
        from leadline.tools.fallback import FallbackSearch

        search = FallbackSearch(backends)
    return search, Fetcher(fetch_policy(settings), store=page_store)


def make_store(settings: Settings) -> RunStore:
    """The SQL run store on the settings' database."""
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
