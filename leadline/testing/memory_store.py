"""An in-memory :class:`~leadline.storage.base.RunStore` for unit tests and throwaway runs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from leadline.errors import RunNotFoundError
from leadline.storage.base import RunRecord, RunStatus, SourceRecord, StepRecord


class MemoryRunStore:
    """Keeps runs, steps and sources in dictionaries; thread-safe; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: dict[str, RunRecord] = {}
        self.steps: dict[str, dict[str, StepRecord]] = {}
        self.sources: dict[str, dict[str, SourceRecord]] = {}
        self.checkpointer = InMemorySaver()
        """LangGraph checkpoints kept beside the runs, so resume works in memory too."""

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
        run_id = run_id or uuid.uuid4().hex[:12]
        with self._lock:
            self.runs[run_id] = RunRecord(
                run_id=run_id,
                question=question,
                status="running",
                mode=mode,
                model=model,
                budget=budget,
                settings=settings,
                created_at=datetime.now(UTC),
            )
            self.steps[run_id] = {}
            self.sources[run_id] = {}
        return run_id

    def record_step(self, step: StepRecord) -> StepRecord:
        """Store a step once; a key recorded already returns the stored step unchanged."""
        with self._lock:
            steps = self.steps.setdefault(step.run_id, {})
            if step.key in steps:
                return steps[step.key]
            stored = replace(step, created_at=datetime.now(UTC))
            steps[step.key] = stored
            return stored

    def get_step(self, run_id: str, key: str) -> StepRecord | None:
        """The step recorded under ``key`` in the run, or None."""
        with self._lock:
            return self.steps.get(run_id, {}).get(key)

    def list_steps(self, run_id: str) -> list[StepRecord]:
        """The run's steps in the order they were recorded."""
        with self._lock:
            return list(self.steps.get(run_id, {}).values())

    def record_source(self, source: SourceRecord) -> None:
        """Record a source the run read (idempotent on run and doc id)."""
        with self._lock:
            self.sources.setdefault(source.run_id, {}).setdefault(source.doc_id, source)

    def record_sources(self, sources: Sequence[SourceRecord]) -> None:
        """Record the sources a node read (each as :meth:`record_source`)."""
        for source in sources:
            self.record_source(source)

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
        """Record how the run ended."""
        with self._lock:
            run = self._get_run_unlocked(run_id)
            self.runs[run_id] = replace(
                run,
                status=status,
                answer=answer,
                citations=citations or [],
                report=report,
                spend=spend or {},
                error=error,
                finished_at=datetime.now(UTC),
            )

    def _get_run_unlocked(self, run_id: str) -> RunRecord:
        if run_id not in self.runs:
            raise RunNotFoundError(f"no run {run_id!r}")
        return self.runs[run_id]

    def get_run(self, run_id: str) -> RunRecord:
        """The run's record; raises RunNotFoundError for an unknown id."""
        with self._lock:
            return self._get_run_unlocked(run_id)

    def list_runs(self, *, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        with self._lock:
            runs = sorted(self.runs.values(), key=lambda r: r.created_at or datetime.min, reverse=True)
        return runs[:limit]

    def delete_run(self, run_id: str) -> None:
        """Forget a run and everything recorded under it."""
        with self._lock:
            self.runs.pop(run_id, None)
            self.steps.pop(run_id, None)
            self.sources.pop(run_id, None)
