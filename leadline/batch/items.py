"""What :meth:`leadline.Researcher.abatch` yields: one question's outcome, as soon as it is known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadline.budgets.ledger import Spend
from leadline.errors import LeadlineError
from leadline.result import Citation, ResearchResult
from leadline.storage.records import JobRecord


class BatchJobError(LeadlineError):
    """A batch question that failed in a worker (maybe another process): its recorded error."""


@dataclass(frozen=True)
class BatchItem:
    """The outcome of question ``index`` of a batch: its result, or the error that ended it."""

    index: int
    question: str
    outcome: ResearchResult | LeadlineError

    @property
    def ok(self) -> bool:
        return isinstance(self.outcome, ResearchResult)


def result_from_job(job: JobRecord) -> ResearchResult | LeadlineError:
    """A finished job of the run database as the library's result (or the error it failed with)."""
    data: dict[str, Any] = dict(job.result or {})
    if job.status != "done":
        error = BatchJobError(job.error or f"the job ended {job.status}")
        error.run_data["run_id"] = job.run_id
        return error
    spend = {k: v for k, v in (data.get("spend") or {}).items() if k in Spend.__dataclass_fields__}
    return ResearchResult(
        run_id=str(data.get("run_id") or job.run_id or ""),
        question=job.question,
        answer=str(data.get("answer") or ""),
        citations=[Citation(**c) for c in data.get("citations") or []],
        spend=Spend(**spend),
        report=data.get("report"),
        forced=data.get("forced"),
        confidence=data.get("confidence"),
        allocation=dict(data.get("allocation") or {}),
        trace=list(data.get("decisions") or []),
    )


__all__ = ["BatchItem", "BatchJobError", "result_from_job"]
