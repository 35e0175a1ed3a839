"""Many workers on one database: leases, a SIGKILLed worker's job finished elsewhere from its checkpoint,
a clean stop that a rerun continues, and a batch that never spends more than its total."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadline.batch.inputs import BatchQuestion
from leadline.batch.plan import BatchOptions, open_batch
from leadline.batch.worker import BatchWorker, run_id_for
from leadline.budgets.ledger import Budget
from leadline.cli import app
from leadline.config import Settings
from leadline.storage.store import SqlRunStore
from leadline.tools.corpus_index import resolve_corpus

QUESTIONS = [f"What is topic {i} about, and where is it taught?" for i in range(6)]
REPO = Path(__file__).resolve().parents[2]


def _open(url: str, server: Any, corpus: str, n: int = 4, **opts: Any) -> tuple[SqlRunStore, str, Settings]:
    settings = Settings(base_url=server.url, corpus=corpus, db_url=url)
    resolve_corpus(corpus, settings.indexes_dir)  # build the index once, before any worker races to
    store = SqlRunStore.from_url(url)
    options = BatchOptions(per_question=Budget(tokens=300, searches=3), **opts)
    qs = [BatchQuestion(f"q{i}", q, i + 1) for i, q in enumerate(QUESTIONS[:n])]
    record, _ = open_batch(store, "batch-under-test", qs, settings, options)
    return store, record.batch_id, settings


def _llm_calls(store: SqlRunStore, batch_id: str) -> int:
    return sum(
        store.ledger_totals(run_id_for(batch_id, j.question_id)).llm_calls for j in store.list_jobs(batch_id)
    )


def _assert_ledgers_match_steps(store: SqlRunStore, batch_id: str) -> None:
    for job in store.list_jobs(batch_id):
        run_id = run_id_for(batch_id, job.question_id)
        steps = store.list_steps(run_id)
        keys = [s.key for s in steps]
        assert len(keys) == len(set(keys))  # no recorded call made twice
        assert len(store.ledger_entries(run_id)) == len(steps)  # one ledger row per recorded step


@pytest.mark.postgres
def test_worker_processes_share_the_batch_and_its_total(
    pg_url: str, fake_server: Any, corpus: str, tmp_path: Path
) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "batch", str(questions), "--db", pg_url, "--base-url", fake_server.url, "--corpus", corpus,
            "--workers", "2", "--concurrency", "2", "--total-budget", "2000,12", "--out", str(tmp_path / "r"),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with SqlRunStore.from_url(pg_url) as store:
        (batch,) = [b for b in [store.get_batch(result.stderr.split("batch ")[1].split(":")[0])]]
        jobs = store.list_jobs(batch.batch_id)
        progress = store.batch_progress(batch.batch_id)
    assert all(j.status == "done" and j.attempts == 1 for j in jobs)
    # Usually both processes take jobs; on a loaded machine the first can drain the batch before the
    # second has started (seen once in CI), so this asserts what always holds: no job ran twice.
    assert 1 <= len({j.worker for j in jobs}) <= 2
    assert progress.spent_tokens <= 2000 and progress.spent_searches <= 12
    # the pool plus what was spent is the total: every grant came back less its spend
    assert progress.pool_tokens + progress.spent_tokens == 2000
    assert progress.pool_searches + progress.spent_searches == 12


@pytest.mark.postgres
def test_a_sigkilled_workers_job_is_finished_by_another_from_its_checkpoint(
    pg_url: str, fake_server: Any, corpus: str
) -> None:
    fake_server.delay_s = 0.3
    store, batch_id, settings = _open(pg_url, fake_server, corpus, n=2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "leadline.cli",
        "worker",
        batch_id,
        "--db",
        pg_url,
        "--lease-seconds",
        "2",
        "-q",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        victim = None
        deadline = time.monotonic() + 180  # a worker process starts in ~90 s on a loaded 2-core machine
        while victim is None and time.monotonic() < deadline:
            for job in store.list_jobs(batch_id, status="running"):
                if store.ledger_totals(run_id_for(batch_id, job.question_id)).llm_calls >= 2:
                    victim = job
            time.sleep(0.05)
        assert victim is not None, proc.stderr.read().decode() if proc.poll() is not None else "no progress"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_id = run_id_for(batch_id, victim.question_id)
    before = store.ledger_totals(run_id)
    sent_before = len(fake_server.generation_requests())
    stats = asyncio.run(BatchWorker(store, batch_id, settings=settings, lease_s=2, poll_s=0.2).run())
    jobs = {j.question_id: j for j in store.list_jobs(batch_id)}
    assert all(j.status == "done" for j in jobs.values())
    taken = jobs[victim.question_id]
    assert taken.attempts == 2 and taken.worker == stats.worker and stats.done >= 1
    after = store.ledger_totals(run_id)
    assert after.llm_calls > before.llm_calls >= 2  # it went on from where the dead worker was
    _assert_ledgers_match_steps(store, batch_id)
    # every LLM request the server saw is in a ledger, but for at most one in flight at the kill
    assert 0 <= len(fake_server.generation_requests()) - _llm_calls(store, batch_id) <= 1
    assert sent_before >= before.llm_calls
    progress = store.batch_progress(batch_id)
    assert (
        progress.spent_tokens <= progress.total_tokens and progress.spent_searches <= progress.total_searches
    )
    store.close()


def test_a_stopped_worker_gives_its_job_back_and_a_rerun_resumes_it(
    sqlite_url: str, fake_server: Any, corpus: str
) -> None:
    fake_server.delay_s = 0.2
    store, batch_id, settings = _open(sqlite_url, fake_server, corpus, n=1, controller="fixed")
    run_id = run_id_for(batch_id, "q0")

    def recorded_calls() -> int:
        return (
            store.ledger_totals(run_id).llm_calls if any(j.run_id for j in store.list_jobs(batch_id)) else 0
        )

    async def stop_midway() -> None:
        task = asyncio.create_task(BatchWorker(store, batch_id, settings=settings).run())
        while recorded_calls() < 1:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stop_midway())
    (job,) = store.list_jobs(batch_id)
    assert job.status == "pending" and job.grant_tokens == 300  # given back, its grant kept
    assert store.get_run(run_id).status == "interrupted"
    recorded = store.ledger_totals(run_id).llm_calls
    asyncio.run(BatchWorker(store, batch_id, settings=settings).run())
    (job,) = store.list_jobs(batch_id)
    assert job.status == "done" and job.attempts == 2
    assert store.ledger_totals(run_id).llm_calls > recorded
    _assert_ledgers_match_steps(store, batch_id)
    assert 0 <= len(fake_server.generation_requests()) - _llm_calls(store, batch_id) <= 1
    store.close()


@pytest.mark.postgres
def test_workers_on_one_store_commit_without_waiting_for_the_flush_and_say_so_once(
    pg_url: str, fake_server: Any, corpus: str
) -> None:
    """Every store connection of a worker has ``synchronous_commit`` off, and however many workers (and
    checkpoint savers) share the store, the engine gets one listener for it, not one per saver made."""
    from sqlalchemy import event, text

    from leadline.batch import worker as worker_module

    store, batch_id, settings = _open(pg_url, fake_server, corpus, n=2)
    before = len(list(store.engine.pool.dispatch.connect))
    for _ in range(2):
        asyncio.run(BatchWorker(store, batch_id, settings=settings, concurrency=4, max_jobs=1).run())
    assert event.contains(store.engine, "connect", worker_module._commit_without_flush)
    assert len(list(store.engine.pool.dispatch.connect)) == before + 1  # 2 workers x 4 savers: one listener
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
    store.engine.dispose()
    with store.engine.connect() as conn:  # a fresh connection is set up as it opens
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
    assert store.batch_progress(batch_id).done == 2


@pytest.mark.postgres
def test_a_job_that_ends_while_an_idle_slot_reads_the_batch_is_not_waited_for(
    pg_url: str, fake_server: Any, corpus: str
) -> None:
    """An idle slot reads the batch, then waits up to ``poll_s`` for one of the worker's jobs to end. A
    job that ends during the read must count: the worker finishes at once instead of a poll later."""
    store, batch_id, settings = _open(pg_url, fake_server, corpus, n=3)
    read = store.batch_progress

    def slow_read(batch: str) -> Any:
        progress = read(batch)
        time.sleep(1.0)  # the last job ends after the batch was read, before the answer is back
        return progress

    store.batch_progress = slow_read  # type: ignore[method-assign]
    t = time.monotonic()
    stats = asyncio.run(BatchWorker(store, batch_id, settings=settings, concurrency=2, poll_s=30.0).run())
    assert stats.done == 3
    assert time.monotonic() - t < 15.0  # without the fix: at least the 30 s poll


@pytest.mark.postgres
def test_idle_slots_stop_once_every_running_job_is_the_workers_own(
    pg_url: str, fake_server: Any, corpus: str
) -> None:
    """Nothing pending and every running job live in this worker's other slots: no job can come back to
    be claimed, so an idle slot is done after one look instead of reading the batch at every job's end."""
    store, batch_id, settings = _open(pg_url, fake_server, corpus, n=3)
    read = store.batch_progress
    looks: list[Any] = []

    def counted(batch: str) -> Any:
        looks.append(read(batch))
        return looks[-1]

    store.batch_progress = counted  # type: ignore[method-assign]
    stats = asyncio.run(BatchWorker(store, batch_id, settings=settings, concurrency=8, poll_s=30.0).run())
    assert stats.done == 3
    # the five slots that never got a job look once together and are done; the slots whose jobs end
    # after that need not look again; the worker reads the batch once more to finish it
    assert len(looks) <= 3
    assert store.get_batch(batch_id).status == "done"


def test_a_worker_follows_the_batchs_links_not_its_own_settings(
    tmp_path: Path, fake_server: Any, corpus: str
) -> None:
    """A batch stores its search links; a worker started with other links (its environment, say) uses the
    batch's, and a batch stored without any follows none."""
    url = f"sqlite:///{tmp_path / 'batches.db'}"
    resolve_corpus(corpus, Settings().indexes_dir)
    own = Settings(base_url=fake_server.url, corpus=corpus, db_url=url, search_links=7)
    options = BatchOptions(per_question=Budget(tokens=300, searches=2))
    firsts: dict[int, dict[str, Any]] = {}
    with SqlRunStore.from_url(url) as store:
        for links in (2, 0):
            batch_settings = Settings(base_url=fake_server.url, corpus=corpus, db_url=url, search_links=links)
            qs = [BatchQuestion(f"q{links}", QUESTIONS[links], 1)]
            record, _ = open_batch(store, f"links-{links}", qs, batch_settings, options)
            stats = asyncio.run(BatchWorker(store, record.batch_id, settings=own).run())
            assert stats.done == 1
            searches = [
                s for s in store.list_steps(run_id_for(record.batch_id, f"q{links}")) if s.kind == "search"
            ]
            assert searches, "the run made no search"
            firsts[links] = searches[0].request
    assert firsts[2].get("links") == 2  # the first search asks for the batch's 2 (nothing read yet)
    assert "links" not in firsts[0]
