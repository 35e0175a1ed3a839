"""Batch throughput, orchestration overhead, memory per run, worker scaling and pool accounting.

Everything real but the model: a fake OpenAI-compatible server in its own process answers every
generation request after 300 ms over real HTTP on 127.0.0.1 (answers shaped like a sensible model's,
cut to ``max_tokens``), the packaged demo corpus behind the real BM25 index, PostgreSQL for the runs,
their checkpoints, the jobs and the batch pool. Questions: ``benchmarks/data/batch_questions.jsonl``
(256 questions about demo-corpus titles, committed). Measured side by side in one invocation:

- throughput (finished runs per second) of one process running 1, 8, 32 and 128 runs at once
  (``BatchWorker(concurrency=c)``; a batch of ``--runs`` questions per level (256), at least 2·c, and 4
  for one run at a time); ``speedup_32`` = throughput at 32 / throughput at 1 (target ≥ 20). A level
  starts with all its slots waiting on the server together and ends with the last runs' final calls,
  so a short batch mostly measures its start and end: 64 runs at 32 (two runs a slot, what this
  benchmark used before 2026-12-06) read about a sixth lower than 256. ``speedup_32_64runs`` is
  that short batch, measured in the same invocation, for comparison. With ``--repeat N`` each level
  runs N times on fresh batches and the medians are reported;
- orchestration overhead per graph step, excluding LLM and search time: for each run at concurrency
  1, (run wall time − the LLM and search seconds in its ledger) / its graph steps; the median
  (target < 5 ms);
- memory per concurrent run: (peak RSS at 128 − peak RSS at 1) / 127, sampled every 20 ms;
- CPU per run: the worker process's CPU time (``time.process_time``: every thread) over a level / its
  runs, and ``cpu_bound_speedup`` = one run's wall time / the CPU per run at 32 — the most one process
  can reach when its runs' CPU is the only limit (they share one interpreter lock), so ``speedup_32``
  reads against this machine's speed;
- 4 worker processes (``leadline worker``) against 1 on the same kind of batch: throughput over the
  span from the first run created to the last job finished (process start-up excluded, printed
  apart with the plain wall-clock ratio); ``workers4_speedup`` (target ≥ 3.5);
- the pool's accounting: every batch's spend summed from the ledger against its total, plus a batch
  whose total is 40 % of its nominal budget; ``pool_overspend`` is the largest excess (target 0).

    .venv/bin/python benchmarks/batch.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Creates one schema in that database and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUESTIONS = HERE / "data" / "batch_questions.jsonl"
SERVER = """
import sys, time
from leadline.testing.fake_openai_server import serve_fake_openai
from leadline.testing.research_responder import chat_responder
with serve_fake_openai(responder=chat_responder, delay_s=float(sys.argv[1])) as s:
    print(s.url, flush=True)
    while True:
        time.sleep(3600)
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples this process's RSS every 20 ms while in the ``with`` block."""

    def __enter__(self) -> PeakRss:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def bench_environment(pg: str, delay: float, prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh leadline home with the demo index, the fake server (``delay`` s a call) and a new
    PostgreSQL schema; yields (database URL in that schema, server URL); stops the server and drops the
    schema on exit. Shared with ``batch_floor.py``."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["LEADLINE_HOME"] = str(home)
    import psycopg

    from leadline.storage.checkpoint import postgres_conninfo
    from leadline.tools.corpus_index import resolve_corpus

    t0 = time.perf_counter()
    resolve_corpus("demo", home / "indexes")
    print(f"demo index built in {time.perf_counter() - t0:.1f} s (not measured)", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()
    schema = f"leadline_bench_{uuid.uuid4().hex[:10]}"
    admin = postgres_conninfo(pg)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg}?options=-csearch_path%3D{schema}", base_url
    finally:
        server.terminate()
        server.wait(timeout=10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds the fake server takes per call")
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--worker-questions", type=int, default=48)
    parser.add_argument(
        "--runs",
        type=int,
        default=256,
        help="runs per level at 8 or more at once (at least two per slot; one at a time runs 4)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each concurrency level this many times (fresh batches) and report the medians",
    )
    args = parser.parse_args()

    from leadline.batch.inputs import read_questions

    with bench_environment(args.pg, args.delay, "leadline-bench-batch-") as (url, base_url):
        questions = read_questions(QUESTIONS).questions
        figures = asyncio.run(measure(url, base_url, questions, args))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


async def measure(url: str, base_url: str, questions: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    from leadline.batch.plan import BatchOptions, open_batch
    from leadline.batch.worker import BatchWorker, JobEvent, run_id_for
    from leadline.budgets.ledger import Budget
    from leadline.config import Settings
    from leadline.storage.store import SqlRunStore

    store = SqlRunStore.from_url(url)
    settings = Settings(base_url=base_url, corpus="demo", db_url=url)
    options = BatchOptions(per_question=Budget(tokens=512, searches=3))
    overspend: list[float] = []

    def check_pool(batch_id: str) -> str:
        p = store.batch_progress(batch_id)
        for job in store.list_jobs(batch_id, status="failed")[:3]:
            print(f"  failed {job.question_id}: {job.error}", flush=True)
        overspend.append(max(p.spent_tokens - p.total_tokens, p.spent_searches - p.total_searches, 0))
        return (
            f"spent {p.spent_tokens}/{p.total_tokens} tokens, {p.spent_searches}/{p.total_searches} searches"
            f" ({p.done} done, {p.failed} failed)"
        )

    # warm up: the client, the index, the store (not measured)
    batch_id = open_batch(store, "warmup", questions[-2:], settings, options)[0].batch_id
    await BatchWorker(store, batch_id, settings=settings).run()

    levels = [int(x) for x in args.levels.split(",")]
    throughput: dict[int, float] = {}
    peaks: dict[int, float] = {}
    cpu_per_run: dict[int, float] = {}
    overheads: list[float] = []
    repeats: dict[int, list[tuple[float, float]]] = {}
    """Per level, (throughput, CPU per run) of each repeat; the figures are their medians."""
    for c, rep in [(c, rep) for c in levels for rep in range(args.repeat)]:
        n = 4 if c == 1 else max(2 * c, args.runs)
        name = f"level-{c}" if rep == 0 else f"level-{c}-{rep}"
        record, _ = open_batch(store, name, questions[:n], settings, options)
        done: list[JobEvent] = []
        with PeakRss() as rss:
            t, cpu = time.perf_counter(), time.process_time()
            await BatchWorker(
                store, record.batch_id, settings=settings, concurrency=c, on_event=done.append
            ).run()
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        finished = [e for e in done if e.kind == "done" and e.result is not None]
        repeats.setdefault(c, []).append((len(finished) / wall, cpu / max(1, len(finished))))
        throughput[c] = statistics.median(x for x, _ in repeats[c])
        cpu_per_run[c] = statistics.median(x for _, x in repeats[c])
        peaks[c] = max(peaks.get(c, 0.0), rss.peak)
        if c == 1:
            for e in finished:
                assert e.result is not None
                external = sum(
                    x.seconds for x in store.ledger_entries(run_id_for(record.batch_id, e.job.question_id))
                )
                overheads.append((e.result.spend.seconds - external) * 1000 / max(1, len(e.result.trace)))
        print(
            f"concurrency {c:>3}: {len(finished)}/{n} runs in {wall:6.2f} s = "
            f"{len(finished) / wall:6.2f} runs/s; "
            f"CPU {cpu / max(1, len(finished)) * 1000:5.1f} ms/run; peak RSS {rss.peak:7.1f} MB; "
            f"{check_pool(record.batch_id)}",
            flush=True,
        )

    # the same at 32 on a short batch (two runs a slot): mostly its start and its end
    short: list[float] = []
    if 32 in levels and max(64, args.runs) > 64:
        for rep in range(args.repeat):
            record, _ = open_batch(store, f"level-32-short-{rep}", questions[:64], settings, options)
            t = time.perf_counter()
            stats = await BatchWorker(store, record.batch_id, settings=settings, concurrency=32).run()
            short.append(stats.done / (time.perf_counter() - t))
            print(f"concurrency  32, 64 runs: {stats.done}/64 runs = {short[-1]:6.2f} runs/s", flush=True)

    # worker processes: 1 against 4, the same number of questions each
    spans: dict[int, tuple[float, float]] = {}
    for workers in (1, 4):
        n = args.worker_questions
        record, _ = open_batch(store, f"workers-{workers}", questions[-n - 2 : -2], settings, options)
        cmd = [sys.executable, "-m", "leadline.cli", "worker", record.batch_id, "--db", url, "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t = time.perf_counter()
        procs = [subprocess.Popen(cmd, env=env) for _ in range(workers)]
        for p in procs:
            p.wait()
        wall = time.perf_counter() - t
        jobs = store.list_jobs(record.batch_id)
        starts = [store.get_run(j.run_id).created_at for j in jobs if j.run_id]
        ends = [store.get_run(j.run_id).finished_at for j in jobs if j.run_id]
        span = (max(e for e in ends if e) - min(starts)).total_seconds()
        spans[workers] = (span, wall)
        print(
            f"{workers} worker process(es): {sum(j.status == 'done' for j in jobs)}/{n} done; "
            f"{span:.2f} s from first run to last finish, {wall:.2f} s wall with start-up; "
            f"{check_pool(record.batch_id)}",
            flush=True,
        )

    # the pool under pressure: a total of 40 % of the nominal budget, 32 runs at once
    tight = BatchOptions(
        per_question=options.per_question, total_tokens=int(0.4 * 512 * 64), total_searches=int(0.4 * 3 * 64)
    )
    record, _ = open_batch(store, "tight-pool", questions[:64], settings, tight)
    await BatchWorker(store, record.batch_id, settings=settings, concurrency=32).run()
    print(f"tight pool (40 % of nominal): {check_pool(record.batch_id)}", flush=True)
    store.close()

    base = throughput[levels[0]]
    figures = {
        "speedup_32": f"{throughput[32] / base:.1f}" if 32 in throughput else "nan",
        "overhead_ms_median": f"{statistics.median(overheads):.2f}",
        "workers4_speedup": f"{spans[1][0] / spans[4][0]:.2f}",
        "pool_overspend": f"{max(overspend):.0f}",
    }
    if short:
        figures["speedup_32_64runs"] = f"{statistics.median(short) / base:.1f}"
    if 32 in cpu_per_run:
        figures["cpu_ms_per_run_32"] = f"{cpu_per_run[32] * 1000:.1f}"
        figures["cpu_bound_speedup"] = f"{1 / base / cpu_per_run[32]:.1f}"
    top = max(levels)
    print(
        json.dumps(
            {
                "throughput_runs_per_s": {str(c): round(v, 3) for c, v in throughput.items()},
                "speedups": {str(c): round(v / base, 2) for c, v in throughput.items()},
                "overhead_ms_per_step": {
                    "median": round(statistics.median(overheads), 2),
                    "max": round(max(overheads), 2),
                    "runs": len(overheads),
                },
                "memory_mb_per_concurrent_run": round((peaks[top] - peaks[levels[0]]) / (top - levels[0]), 3),
                "cpu_ms_per_run": {str(c): round(v * 1000, 1) for c, v in cpu_per_run.items()},
                "workers4_speedup_wall_with_startup": round(spans[1][1] / spans[4][1], 2),
            }
        )
    )
    return figures


if __name__ == "__main__":
    main()
