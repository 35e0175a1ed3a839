"""Eight worker processes writing runs into one fresh database lose no row and never see 'locked'.

The database starts empty; all eight open it at the same signal (so they race to create the schema),
then each writes its own runs and steps, and also records the *same* steps, sources and pages as
every other worker (the resume-vs-resume race): those must be stored exactly once. Workers are separate
processes, each with its own connections, started from a fork server (a fresh single-threaded process):
a plain fork of pytest's process copies the threads other tests left running, and a child that inherits
a lock held mid-operation can hang inside its write transaction (seen once in a full suite: the other
workers waited 30 s on "database is locked"). The fork server has imported the package already
(``conftest.py``), so a worker starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from leadline.errors import ConfigError
from leadline.storage.base import SourceRecord, StepRecord, StoredPage
from leadline.storage.store import SqlRunStore

WORKERS = 8
RUNS_PER_WORKER = 12
STEPS_PER_RUN = 6
SHARED_STEPS = 6
SHARED_RUN = "shared-run"

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="starts its worker processes from a fork server",
)


def _work(url: str, worker: int, start: Any, out_dir: str) -> None:
    """Body of one worker process; writes its run ids (or its traceback) to a file, never returns."""
    code = 1
    try:
        start.wait(60)
        # First use by eight processes at once: the schema is created exactly once, whoever wins.
        store = SqlRunStore.from_url(url)
        with contextlib.suppress(ConfigError):  # another worker may have created it first
            store.create_run(
                question="shared", mode="answer", model="m", budget={}, settings={}, run_id=SHARED_RUN
            )
        created = []
        for r in range(RUNS_PER_WORKER):
            run_id = store.create_run(
                question=f"w{worker} q{r}", mode="answer", model="m", budget={}, settings={}
            )
            for s in range(STEPS_PER_RUN):
                kind = "search" if s % 2 else "llm"
                step = StepRecord(
                    run_id=run_id,
                    key=f"{kind}:{s}",
                    kind=kind,
                    node=kind,
                    request={"query": f"q{s}"},
                    response={"n": s},
                    completion_tokens=0 if s % 2 else 5,
                    searches=s % 2,
                )
                store.record_step(step)
            store.finish_run(run_id, status="done", answer=f"a{r}", spend={"tokens": 15})
            created.append(run_id)
            # Everyone also replays the shared run's steps, source and page at the same time.
            s = r % SHARED_STEPS
            shared = StepRecord(
                run_id=SHARED_RUN,
                key=f"shared:{s}",
                kind="llm",
                node="think",
                response={"by": worker},
                completion_tokens=7,
            )
            store.record_step(shared)
            store.record_source(
                SourceRecord(run_id=SHARED_RUN, doc_id=f"d{s}", title="t", text=f"shared text {s}")
            )
            page = StoredPage(
                url=f"https://example.org/{s}",
                final_url="",
                status=200,
                content_type="text/html",
                sha256="",
                body=f"page {s}".encode(),
            )
            store.put_page(page)
        store.close()
        Path(out_dir, f"{worker}.ok").write_text("\n".join(created))
        code = 0
    except BaseException:
        Path(out_dir, f"{worker}.err").write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _run_workers(url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("forkserver")
    start = ctx.Event()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    procs = [ctx.Process(target=_work, args=(url, w, start, str(out_dir))) for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(300)
    errors = "\n".join(f.read_text() for f in out_dir.glob("*.err"))
    assert "database is locked" not in errors
    assert [p.exitcode for p in procs] == [0] * WORKERS, errors[-3000:]
    created = [run_id for f in out_dir.glob("*.ok") for run_id in f.read_text().split()]

    with SqlRunStore.from_url(url) as store:
        assert len(created) == len(set(created)) == WORKERS * RUNS_PER_WORKER
        runs = store.list_runs(limit=10_000)
        assert len(runs) == WORKERS * RUNS_PER_WORKER + 1
        assert sum(1 for r in runs if r.status == "done") == WORKERS * RUNS_PER_WORKER
        for run_id in created:
            steps = store.list_steps(run_id)
            assert [s.key for s in steps] == [
                f"{'search' if s % 2 else 'llm'}:{s}" for s in range(STEPS_PER_RUN)
            ]
            totals = store.ledger_totals(run_id)
            assert (totals.completion_tokens, totals.searches) == (15, 3)
        shared_steps = store.list_steps(SHARED_RUN)
        assert sorted(s.key for s in shared_steps) == sorted(f"shared:{s}" for s in range(SHARED_STEPS))
        assert store.ledger_totals(SHARED_RUN).completion_tokens == 7 * SHARED_STEPS
        assert len(store.list_sources(SHARED_RUN)) == SHARED_STEPS
        # SHARED_STEPS source texts and SHARED_STEPS page bodies, each stored once.
        assert store.document_count() == 2 * SHARED_STEPS


def test_eight_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    _run_workers(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path)


@pytest.mark.postgres
def test_eight_processes_on_one_postgres_database(pg_url: str, tmp_path: Path) -> None:
    _run_workers(pg_url, tmp_path)
