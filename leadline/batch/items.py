"""A finished job of the run database as what :meth:`leadline.Researcher.abatch` yields (a
:class:`~leadline.api.BatchItem`), and the error of a question that failed in a worker."""

from __future__ import annotations

from typing import Any

from leadline.api import BatchItem
from leadline.budgets.ledger import Spend
from leadline.errors import LeadlineError
from leadline.result import Citation, ResearchResult
from leadline.storage.records import JobRecord


class BatchJobError(LeadlineError):
    """A batch question that failed in a worker (maybe another process): its recorded error."""


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
        overrun=dict(data.get("overrun") or {}),
    )


__all__ = ["BatchItem", "BatchJobError", "result_from_job"]
