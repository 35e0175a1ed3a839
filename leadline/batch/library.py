"""``Researcher.abatch`` with an executor other than ``local``: the batch goes through the run database.

The questions become a batch of jobs; worker processes (``executor="processes"``) or Ray actors
(``executor="ray"``) run them, and the results are yielded as their jobs finish. The researcher's store
must be the SQL store (PostgreSQL for many workers), since that is where the workers meet.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from leadline.api import register_batch_executor
from leadline.batch.inputs import BatchQuestion
from leadline.batch.items import BatchItem, result_from_job
from leadline.batch.plan import BatchOptions, batch_id_for, open_batch
from leadline.batch.runner import BatchRun, run_batch
from leadline.budgets.ledger import Budget
from leadline.config import Settings
from leadline.errors import ConfigError
from leadline.storage.store import SqlRunStore


async def database_batch(
    store: Any,
    settings: Settings,
    texts: Sequence[str],
    *,
    per_question: Budget,
    total_budget: Budget | None,
    adaptive: bool,
    concurrency: int,
    mode: Literal["answer", "report"],
    executor: Literal["processes", "ray"],
    workers: int,
    ray_address: str | None = None,
    poll_s: float = 0.2,
) -> AsyncIterator[BatchItem]:
    """Run ``texts`` as a database batch with ``executor``; yield each outcome as its job finishes."""
    if not isinstance(store, SqlRunStore):
        raise ConfigError(f"executor {executor!r} needs the SQL run store (workers meet in its database)")
    options = BatchOptions(
        per_question=per_question,
        total_tokens=total_budget.tokens if total_budget is not None else None,
        total_searches=total_budget.searches if total_budget is not None else None,
        controller="adaptive" if adaptive else "fixed",
        mode=mode,
    )
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    batch_id = batch_id_for(f"api:{digest}", settings, options)
    questions = [BatchQuestion(f"q{i:06d}", t, i + 1) for i, t in enumerate(texts)]
    open_batch(store, batch_id, questions, settings, options, name="api")
    run = BatchRun(
        store=store,
        batch_id=batch_id,
        db_url=store.url.render_as_string(hide_password=False),
        executor=executor,
        workers=workers,
        concurrency=concurrency,
        ray_address=ray_address,
    )
    task = asyncio.create_task(run_batch(run))
    seen: set[str] = set()
    try:
        while True:
            finished = task.done()
            for job in store.list_jobs(batch_id):
                if job.status in ("done", "failed") and job.question_id not in seen:
                    seen.add(job.question_id)
                    index = int(job.question_id[1:])
                    yield BatchItem(index, texts[index], result_from_job(job))
            if finished:
                await task  # its error, if it failed
                return
            await asyncio.wait({task}, timeout=poll_s)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


register_batch_executor(database_batch)

__all__ = ["database_batch"]
