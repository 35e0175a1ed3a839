"""The store's calls a batch run makes at 32 at once: how many a run, and the CPU of each (a diagnostic).

Same environment as ``batch_cpu.py`` (the fake OpenAI-compatible server in its own process, 300 ms a call,
the demo corpus, PostgreSQL at 127.0.0.1:5432 in a fresh schema dropped at the end). Every public method
of ``SqlRunStore`` is wrapped to count its calls and the calling thread's CPU (``time.thread_time``)
inside it, over ``--levels`` fresh 64-run batches. The CPU of a call includes what the interpreter lock
costs it while 32 runs share the process, so read the figures side by side (two checkouts, as
``batch_cpu.py`` says), not as absolute costs. Last line: ``record_step_ms=`` (CPU a call) and
``store_ms_per_run=`` (all store calls' CPU a run).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch import QUESTIONS, bench_environment  # noqa: E402
from batch_cpu import measure  # noqa: E402


def instrument() -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Wrap the store's public methods; returns (calls, CPU seconds) by method name, filled as they run."""
    from leadline.storage.store import SqlRunStore

    calls: collections.Counter[str] = collections.Counter()
    cpu: collections.Counter[str] = collections.Counter()
    for name in dir(SqlRunStore):
        fn = getattr(SqlRunStore, name)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type) or name == "from_url":
            continue

        def wrapped(*args: Any, __fn: Any = fn, __name: str = name, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return __fn(*args, **kwargs)
            finally:
                calls[__name] += 1
                cpu[__name] += time.thread_time() - start

        setattr(SqlRunStore, name, wrapped)
    return calls, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--levels", type=int, default=2, help="fresh 64-run batches to measure")
    args = parser.parse_args()

    from leadline.batch.inputs import read_questions

    calls, cpu = instrument()
    with bench_environment(args.pg, 0.3, "leadline-bench-store-") as (url, base_url):
        asyncio.run(measure(url, base_url, read_questions(QUESTIONS).questions, args.levels))
    runs = max(1, calls["finish_run"])  # every run (the warm-up's two included) ends once
    print(f"{'call':24s} {'a run':>7s} {'ms a call':>10s} {'ms a run':>9s}")
    for name, n in calls.most_common():
        if n:
            print(f"{name:24s} {n / runs:7.2f} {1000 * cpu[name] / n:10.3f} {1000 * cpu[name] / runs:9.2f}")
    total = 1000 * sum(cpu.values()) / runs
    step_ms = 1000 * cpu["record_step"] / max(1, calls["record_step"])
    print(f"record_step_ms={step_ms:.3f} store_ms_per_run={total:.2f}")


if __name__ == "__main__":
    main()
