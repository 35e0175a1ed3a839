"""Batches, job claiming and outcome tables on both backends."""

from __future__ import annotations

import threading

import pytest

from leadline.errors import ConfigError
from leadline.storage.records import JobRecord, OutcomeRecord
from leadline.storage.store import SqlRunStore


def test_batch_lifecycle(store: SqlRunStore) -> None:
    batch_id = store.create_batch(name="hotpot-dev", budget={"tokens": 1000}, settings={"model": "m"})
    batch = store.get_batch(batch_id)
    assert (batch.name, batch.status, batch.budget) == ("hotpot-dev", "running", {"tokens": 1000})
    store.finish_batch(batch_id)
    assert store.get_batch(batch_id).status == "done"
    with pytest.raises(ConfigError):
        store.get_batch("missing")
    with pytest.raises(ConfigError):
        store.create_batch(batch_id=batch_id)


def test_add_jobs_skips_questions_already_queued(store: SqlRunStore) -> None:
    batch_id = store.create_batch()
    assert store.add_jobs(batch_id, [("q1", "first?"), ("q2", "second?")]) == 2
    assert store.add_jobs(batch_id, [("q2", "second?"), ("q3", "third?")]) == 1
    assert store.add_jobs(batch_id, []) == 0
    assert [j.question_id for j in store.list_jobs(batch_id)] == ["q1", "q2", "q3"]


def test_workers_never_claim_the_same_job(store: SqlRunStore) -> None:
    batch_id = store.create_batch()
    store.add_jobs(batch_id, [(f"q{i}", f"question {i}") for i in range(30)])
    claimed: list[JobRecord] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while (job := store.claim_job(batch_id, worker=name)) is not None:
                run_id = store.create_run(
                    question=job.question, mode="answer", model="m", budget={}, settings={}
                )
                store.finish_job(job.job_id, run_id=run_id)
                with lock:
                    claimed.append(job)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(j.question_id for j in claimed) == sorted(f"q{i}" for i in range(30))
    done = store.list_jobs(batch_id, status="done")
    assert len(done) == 30 and all(j.run_id and j.attempts == 1 for j in done)


def test_requeue_returns_jobs_of_a_dead_worker(store: SqlRunStore) -> None:
    batch_id = store.create_batch()
    store.add_jobs(batch_id, [("a", "A?"), ("b", "B?")])
    job = store.claim_job(batch_id, worker="killed")
    assert job is not None and job.status == "running"
    assert store.requeue_jobs(batch_id) == 1
    again = store.claim_job(batch_id, worker="alive")
    assert again is not None and again.question_id == "a" and again.attempts == 2
    store.finish_job(again.job_id, status="failed", error="model down")
    failed = store.list_jobs(batch_id, status="failed")
    assert [(j.question_id, j.error) for j in failed] == [("a", "model down")]


def test_outcome_rows_round_trip_and_filter_by_batch(store: SqlRunStore) -> None:
    b1, b2 = store.create_batch(), store.create_batch()
    run_id = store.create_run(question="q", mode="answer", model="m", budget={}, settings={})
    rows = [
        OutcomeRecord(
            question_id=f"q{i}",
            question=f"question {i}",
            tokens=256 * (i + 1),
            searches=i,
            shape="parallel" if i % 2 else "sequential",
            answer=f"answer {i}",
            em=float(i % 2),
            f1=0.5 + i / 10,
            recall=0.25,
            spent_prompt_tokens=100 + i,
            spent_tokens=200 + i,
            spent_searches=i,
            spent_fetches=0,
            spent_seconds=1.5,
            difficulty=0.3,
            batch_id=b1,
            run_id=run_id if i == 0 else None,
            extra={"seed": i},
        )
        for i in range(3)
    ]
    assert store.add_outcome_rows(rows) == 3
    assert store.add_outcome_rows([OutcomeRecord(question_id="x", tokens=1, searches=1, batch_id=b2)]) == 1
    assert store.outcome_rows(batch_id=b1) == rows
    assert len(store.outcome_rows()) == 4
    assert store.add_outcome_rows([]) == 0


def test_outcome_rows_keep_split_and_features(store: SqlRunStore) -> None:
    # The table has no split/features columns; they travel in extra and come back as fields.
    row = OutcomeRecord(
        question_id="t", tokens=128, searches=1, split="train", features={"n_words": 7.0}, extra={"k": 1}
    )
    assert store.add_outcome_rows([row]) == 1
    assert store.outcome_rows() == [row]
