"""What the research loop needs from storage, as a protocol and plain records.

The loop records every side effect (an LLM call, a search, a read) as a *step* under a key that is
stable across a crash and a resume: when a resumed run reaches the same key it gets the recorded
result back instead of spending budget again. ``SqlRunStore`` (SQLite / PostgreSQL) implements this;
``leadline.testing.MemoryRunStore`` is the in-memory twin for unit tests. The fetcher's content-addressed
page cache is a storage type too (:class:`StoredPage`, :class:`PageStore`): ``tools/`` imports it from here.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

RunStatus = Literal["running", "done", "failed", "interrupted"]
StepKind = Literal["llm", "search", "read", "fetch", "note"]


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One recorded side effect of a run (an LLM call, a search, a read) with its result and spend."""

    run_id: str
    key: str
    """Stable identity of the side effect within the run (node, ordinal and a hash of the request)."""
    kind: StepKind
    node: str
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    searches: int = 0
    fetches: int = 0
    seconds: float = 0.0
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class SourceRecord:
    """A source a run read and may cite."""

    run_id: str
    doc_id: str
    title: str
    url: str = ""
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run as stored: question, status, budget, settings, answer and spend."""

    run_id: str
    question: str
    status: RunStatus
    mode: str = "answer"
    model: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    spend: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


@runtime_checkable
class RunStore(Protocol):
    """Durable record of runs. Every method is safe to call from several threads."""

    def create_run(
        self,
        *,
        question: str,
        mode: str,
        model: str,
        budget: dict[str, Any],
        settings: dict[str, Any],
        run_id: str | None = None,
    ) -> str:
        """Record a new run as ``running`` and return its id."""

    def record_step(self, step: StepRecord) -> StepRecord:
        """Store a step once. If the key exists already, the stored record is returned unchanged."""
        ...

    def get_step(self, run_id: str, key: str) -> StepRecord | None:
        """The step recorded under ``key`` in the run, or None."""

    def list_steps(self, run_id: str) -> list[StepRecord]:
        """The run's steps in the order they were recorded."""

    def record_source(self, source: SourceRecord) -> None:
        """Idempotent on (run_id, doc_id)."""
        ...

    def record_sources(self, sources: Sequence[SourceRecord]) -> None:
        """:meth:`record_source` for the sources one node read, at once (one transaction)."""
        ...

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        answer: str | None = None,
        citations: list[dict[str, Any]] | None = None,
        report: str | None = None,
        spend: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how the run ended: status, answer, citations, report, spend or error."""

    def get_run(self, run_id: str) -> RunRecord:
        """Raises :class:`~leadline.errors.RunNotFoundError`."""
        ...

    def list_runs(self, *, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""

    def delete_run(self, run_id: str) -> None:
        """Remove a run and everything recorded under it (used when a run never started properly)."""
        ...


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

    ``SqlRunStore`` implements it on the run database; the fetcher (``tools/``) only sees this protocol.
    """

    def get_page(self, url: str) -> StoredPage | None:
        """The stored page for ``url``, or None."""

    def put_page(self, page: StoredPage) -> None:
        """Store a page; bodies with the same sha256 are stored once."""
        ...


__all__ = [
    "PageStore",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "SourceRecord",
    "StepKind",
    "StepRecord",
    "StoredPage",
    "off_loop",
]


_P = ParamSpec("_P")
_T = TypeVar("_T")
STORE_THREADS = 8
"""Worker threads for the store's calls from async code (a process's runs share them)."""
_executors: dict[int, ThreadPoolExecutor] = {}
"""By process id: a forked child inherits the parent's executor without its threads (work submitted
to it would wait forever), so each process makes its own."""


async def off_loop(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a blocking store call in the store's own worker threads and await it.

    Not ``asyncio.to_thread``: the event loop's default executor has a handful of threads that
    libraries share (LangGraph's PostgreSQL saver serialises checkpoints there while it holds its
    connection), and store calls queued in front of those would hold every checkpoint of the process
    up behind them.
    """
    pid = os.getpid()
    executor = _executors.get(pid)
    if executor is None:
        executor = _executors[pid] = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="leadline-store")
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)
