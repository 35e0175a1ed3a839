"""Batch workers as Ray actors on a local Ray cluster: an actor killed in the middle of a job, the job
finished once elsewhere from its checkpoint; two endpoints shared by least load."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from leadline.batch.ray_executor import connect, start_actors, wait_actors
from leadline.batch.runner import BatchRun
from leadline.batch.worker import run_id_for
from leadline.errors import ConfigError
from leadline.testing.fake_openai_server import serve_fake_openai
from leadline.testing.research_responder import chat_responder

from .test_workers import REPO, _assert_ledgers_match_steps, _llm_calls, _open

ray = pytest.importorskip("ray")


@pytest.mark.postgres
def test_an_actor_killed_mid_job_leaves_it_to_another(
    pg_url: str, fake_server: Any, corpus: str, leadline_home: Path
) -> None:
    fake_server.delay_s = 0.3
    with serve_fake_openai(responder=chat_responder, delay_s=0.3) as replica:
        store, batch_id, _ = _open(pg_url, fake_server, corpus, n=4)
        ray.init(
            num_cpus=3,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "LEADLINE_HOME": str(leadline_home)}},
        )
        try:
            run = BatchRun(
                store=store,
                batch_id=batch_id,
                db_url=pg_url,
                executor="ray",
                workers=2,
                lease_s=3,
                base_urls=[fake_server.url, replica.url],
            )
            actors = start_actors(run, 2)
            names = ray.get([a.name.remote() for a in actors])
            results: list[dict[str, Any]] = []
            waiter = threading.Thread(target=lambda: results.extend(wait_actors(run, actors)))
            waiter.start()
            victim = None
            deadline = time.monotonic() + 120
            while victim is None and time.monotonic() < deadline:
                for job in store.list_jobs(batch_id, status="running"):
                    if (
                        job.worker in names
                        and store.ledger_totals(run_id_for(batch_id, job.question_id)).llm_calls
                    ):
                        victim = job
                time.sleep(0.05)
            assert victim is not None, "no actor got to work"
            ray.kill(actors[names.index(victim.worker)])
            waiter.join(timeout=240)
            assert not waiter.is_alive()
        finally:
            ray.shutdown()
        jobs = {j.question_id: j for j in store.list_jobs(batch_id)}
        assert all(j.status == "done" for j in jobs.values())
        taken = jobs[victim.question_id]
        assert taken.attempts == 2 and taken.worker != victim.worker  # finished once, elsewhere
        assert sum(r["done"] for r in results) == len(jobs) - sum(
            1 for j in jobs.values() if j.worker == victim.worker
        )
        _assert_ledgers_match_steps(store, batch_id)  # equal ledgers: one row per recorded step, none twice
        assert (
            0
            <= len(fake_server.generation_requests())
            + len(replica.generation_requests())
            - _llm_calls(store, batch_id)
            <= 1
        )
        assert replica.generation_requests() and fake_server.generation_requests()  # both endpoints used
        progress = store.batch_progress(batch_id)
        assert (
            progress.spent_tokens <= progress.total_tokens
            and progress.spent_searches <= progress.total_searches
        )
        store.close()


def test_an_unreachable_ray_address_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster") as info:
        connect("127.0.0.1:9")
    assert "\n" not in info.value.message
