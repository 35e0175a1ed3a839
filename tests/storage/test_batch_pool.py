"""The batch pool in the batch row and job leases: grants, refunds, takeovers, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

from leadline.storage.records import JobSpec
from leadline.storage.store import SqlRunStore


def _batch(store: SqlRunStore, n: int, *, tokens: int, searches: int, share: tuple[int, int]) -> str:
    batch_id = store.create_batch(
        budget={"total_tokens": tokens, "total_searches": searches},
        pool_tokens=tokens,
        pool_searches=searches,
    )
    store.queue_jobs(
        batch_id,
        [
            JobSpec(
                question_id=f"q{i}", question=f"question {i}", share_tokens=share[0], share_searches=share[1]
            )
            for i in range(n)
        ],
    )
    return batch_id


def test_grants_keep_the_shares_of_jobs_not_started_and_refunds_return(store: SqlRunStore) -> None:
    batch_id = _batch(store, 3, tokens=900, searches=9, share=(300, 3))
    first = store.claim_job(batch_id, worker="w", draw_from_pool=True, headroom=2.0)
    assert first is not None and (first.grant_tokens, first.grant_searches) == (
        300,
        3,
    )  # the rest is reserved
    assert store.get_batch(batch_id).pool_tokens == 600
    assert store.complete_job(first.job_id, worker="w", status="done", spent_tokens=100, spent_searches=1)
    assert store.get_batch(batch_id).pool_tokens == 800 and store.get_batch(batch_id).pool_searches == 8
    second = store.claim_job(batch_id, worker="w", draw_from_pool=True, headroom=2.0)
    assert second is not None and (second.grant_tokens, second.grant_searches) == (500, 5)  # share + surplus
    # a job already finished cannot be completed twice, nor by another worker
    assert not store.complete_job(first.job_id, worker="w", status="done")
    assert not store.complete_job(second.job_id, worker="other", status="done")


def test_an_empty_pool_funds_nothing_and_unfunded_jobs_can_be_failed(store: SqlRunStore) -> None:
    batch_id = _batch(store, 2, tokens=100, searches=1, share=(100, 1))
    job = store.claim_job(batch_id, worker="w", draw_from_pool=True)
    assert job is not None
    assert store.claim_job(batch_id, worker="w", draw_from_pool=True) is None  # nothing left to grant
    assert store.fail_unfunded(batch_id, error="the batch budget is spent") == 1
    assert store.batch_progress(batch_id).failed == 1


def test_an_expired_lease_is_taken_over_with_its_grant(store: SqlRunStore) -> None:
    batch_id = _batch(store, 1, tokens=300, searches=3, share=(300, 3))
    # a lease long enough that a slow first connection cannot let it pass before the checks below
    job = store.claim_job(batch_id, worker="dead", lease_s=1.0, draw_from_pool=True)
    assert job is not None
    assert store.claim_job(batch_id, worker="alive", lease_s=1.0, draw_from_pool=True) is None
    assert store.heartbeat(batch_id, worker="dead", lease_s=1.0) == 1
    time.sleep(1.3)
    taken = store.claim_job(batch_id, worker="alive", lease_s=30, draw_from_pool=True)
    assert taken is not None and taken.job_id == job.job_id and taken.attempts == 2
    assert (taken.grant_tokens, taken.grant_searches) == (300, 3)  # kept, not drawn twice
    assert store.get_batch(batch_id).pool_tokens == 0
    assert not store.complete_job(job.job_id, worker="dead", status="done")  # the dead worker lost it
    assert store.release_job(job.job_id, worker="alive")
    assert store.list_jobs(batch_id, status="pending")[0].grant_tokens == 300


def test_many_threads_never_grant_more_than_the_pool(store: SqlRunStore) -> None:
    batch_id = _batch(store, 40, tokens=2000, searches=40, share=(100, 1))
    grants: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := store.claim_job(batch_id, worker=name, draw_from_pool=True, headroom=3.0)) is not None:
            with lock:
                grants.append((job.grant_tokens or 0, job.grant_searches or 0))
            store.complete_job(job.job_id, worker=name, status="done", spent_tokens=40, spent_searches=1)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress = store.batch_progress(batch_id)
    assert progress.done == 40 and len(grants) == 40
    # pool + spend == total: every refund and grant accounted once
    assert (progress.pool_tokens, progress.pool_searches) == (2000 - 40 * 40, 0)
    assert all(t >= 100 and s == 1 for t, s in grants)  # every job got at least its share


def test_completing_a_job_can_take_its_spend_from_the_runs_ledger(store: SqlRunStore) -> None:
    """``spent_from_run``: what goes back to the pool is the grant less what the run's ledger holds, read
    in the statement that locks the job (the worker does not ask for the ledger's totals first)."""
    from leadline.storage.base import StepRecord

    batch_id = _batch(store, 1, tokens=1000, searches=10, share=(500, 5))
    job = store.claim_job(batch_id, worker="w", draw_from_pool=True)
    assert job is not None and job.grant_tokens
    run_id = store.create_run(question="Who?", mode="answer", model="m", budget={}, settings={})
    store.record_step(
        StepRecord(run_id=run_id, key="001:plan:0", kind="llm", node="plan", completion_tokens=30)
    )
    store.record_step(StepRecord(run_id=run_id, key="002:search:0", kind="search", node="search", searches=1))
    pool_before = store.get_batch(batch_id)
    assert store.complete_job(job.job_id, worker="w", status="done", run_id=run_id, spent_from_run=True)
    pool_after = store.get_batch(batch_id)
    assert pool_after.pool_tokens - pool_before.pool_tokens == job.grant_tokens - 30
    assert pool_after.pool_searches - pool_before.pool_searches == (job.grant_searches or 0) - 1


def _job(store: SqlRunStore, batch_id: str, job_id: int) -> Any:
    return next(j for j in store.list_jobs(batch_id) if j.job_id == job_id)


def test_a_failed_job_returns_its_grant_or_keeps_it_for_a_retry(store: SqlRunStore) -> None:
    # on PostgreSQL complete_job is one statement: the job, its grant and the pool change together
    batch_id = _batch(store, 2, tokens=600, searches=6, share=(300, 3))
    kept = store.claim_job(batch_id, worker="w", draw_from_pool=True)
    assert kept is not None and store.get_batch(batch_id).pool_tokens == 300
    result = {"answer": "ünï", "n": [1, None]}
    assert store.complete_job(kept.job_id, worker="w", status="failed", error="boom", keep_grant=True)
    job = _job(store, batch_id, kept.job_id)
    assert (job.status, job.error, job.grant_tokens, job.grant_searches) == ("failed", "boom", 300, 3)
    assert store.get_batch(batch_id).pool_tokens == 300  # the grant stays with the job
    other = store.claim_job(batch_id, worker="w", draw_from_pool=True)
    assert other is not None
    assert store.complete_job(
        other.job_id, worker="w", status="failed", error="x", result=result, spent_tokens=50, spent_searches=3
    )
    job = _job(store, batch_id, other.job_id)
    assert (job.grant_tokens, job.grant_searches, job.result) == (None, None, result)
    pool = store.get_batch(batch_id)
    assert (pool.pool_tokens, pool.pool_searches) == (250, 0)  # 300 - 50 back; no search left to return
