"""CPU per batch run at 32 at once, over several fresh 64-run batches: for comparing two code versions.

The machines these benchmarks run on change speed by up to 2× within minutes, so one version's figure
from ``benchmarks/batch.py`` says little about a change. Run this script from two checkouts (git
worktrees) of the versions to compare, alternately, each with its own ``PYTHONPATH``; read the ratio of
their means pair by pair::

    cd A && PYTHONPATH=$PWD python benchmarks/batch_cpu.py --levels 4
    cd B && PYTHONPATH=$PWD python benchmarks/batch_cpu.py --levels 4

Same environment as ``batch.py`` (the fake OpenAI-compatible server in its own process, 300 ms a call,
the demo corpus, PostgreSQL at 127.0.0.1:5432 in a fresh schema dropped at the end); the worker
process's CPU (``time.process_time``, every thread) per finished run. Last line: ``cpu_ms_per_run_32=``
(the mean) and ``cpu_ms_levels=`` (each level's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch import QUESTIONS, bench_environment  # noqa: E402  (the same server, corpus and questions)

CONCURRENCY = 32
RUNS = 64


async def measure(url: str, base_url: str, questions: list[Any], levels: int) -> list[float]:
    from leadline.batch.plan import BatchOptions, open_batch
    from leadline.batch.worker import BatchWorker
    from leadline.budgets.ledger import Budget
    from leadline.config import Settings
    from leadline.storage.store import SqlRunStore

    store = SqlRunStore.from_url(url)
    settings = Settings(base_url=base_url, corpus="demo", db_url=url)
    options = BatchOptions(per_question=Budget(tokens=512, searches=3))
    warmup = open_batch(store, "warmup", questions[-2:], settings, options)[0].batch_id
    await BatchWorker(store, warmup, settings=settings).run()  # the client, the index, the store
    per_run = []
    for k in range(levels):
        start = (k * RUNS) % (len(questions) - RUNS)
        record, _ = open_batch(store, f"level-{k}", questions[start : start + RUNS], settings, options)
        cpu = time.process_time()
        stats = await BatchWorker(store, record.batch_id, settings=settings, concurrency=CONCURRENCY).run()
        per_run.append((time.process_time() - cpu) * 1000 / max(1, stats.done))
        print(f"level {k}: {stats.done} runs, CPU {per_run[-1]:.1f} ms/run", flush=True)
    store.close()
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--levels", type=int, default=4, help="fresh 64-run batches to measure")
    args = parser.parse_args()

    from leadline.batch.inputs import read_questions

    with bench_environment(args.pg, 0.3, "leadline-bench-cpu-") as (url, base_url):
        per_run = asyncio.run(measure(url, base_url, read_questions(QUESTIONS).questions, args.levels))
    levels = ",".join(f"{x:.1f}" for x in per_run)
    print(f"cpu_ms_per_run_32={statistics.mean(per_run):.1f} cpu_ms_levels={levels}")


if __name__ == "__main__":
    main()
