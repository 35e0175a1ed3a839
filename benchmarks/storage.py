"""What durability costs: time to record one step, overhead per run, database size per run.

Runs against a fresh SQLite file (and PostgreSQL too with ``--postgres URL``) with realistic step
payloads (a ~1.5 KB prompt and a ~0.5 KB answer per LLM step; search steps with five results). Each
figure is the median over many writes, measured side by side in one process, on a machine that may be
shared (other processes' load shows up as noise; the medians are robust to a few slow writes).

    .venv/bin/python benchmarks/storage.py [--runs 40] [--steps 12] [--postgres postgresql+psycopg://...]

The last line is ``key=value`` figures; ``step_write_ms_median`` (the default, synchronous=NORMAL) is
the one the target (< 2 ms on SQLite) is about; ``step_write_ms_median_sync_full`` shows what an fsync
per step would cost on this disk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from leadline.storage.base import StepRecord
from leadline.storage.checkpoint import open_checkpointer, thread_config
from leadline.storage.store import SqlRunStore

PROMPT = (
    "You are a careful researcher. Evidence: " + "Richard Dawkins studied zoology at Balliol College. " * 30
)


def _step(run_id: str, i: int) -> StepRecord:
    if i % 3 == 1:
        results = [
            {"doc_id": f"d{i}-{r}", "title": f"Title {r}", "snippet": "snippet " * 20} for r in range(5)
        ]
        return StepRecord(
            run_id=run_id,
            key=f"search:{i}",
            kind="search",
            node="search",
            request={"query": f"query {i}", "backend": "local", "k": 5},
            response={"results": results},
            searches=1,
            seconds=0.01,
        )
    return StepRecord(
        run_id=run_id,
        key=f"llm:{i}",
        kind="llm",
        node="think",
        request={"model": "bench", "prompt": PROMPT, "max_tokens": 256},
        response={"text": "Dawkins attended Balliol College, Oxford. " * 10},
        prompt_tokens=400,
        completion_tokens=120,
        seconds=0.5,
    )


def _bench_store(url: str, runs: int, steps: int, **engine_options: Any) -> dict[str, float]:
    with SqlRunStore.from_url(url, **engine_options) as store:
        store.ensure_schema()
        step_ms: list[float] = []
        replay_ms: list[float] = []
        run_ms: list[float] = []
        for _ in range(runs):
            t_run = time.perf_counter()
            run_id = store.create_run(
                question="q", mode="answer", model="bench", budget={"tokens": 2048}, settings={}
            )
            t_steps = 0.0
            for i in range(steps):
                t0 = time.perf_counter()
                store.record_step(_step(run_id, i))
                dt = time.perf_counter() - t0
                step_ms.append(dt * 1000)
                t_steps += dt
            store.finish_run(run_id, status="done", answer="Oxford", citations=[{"doc_id": "d1"}], spend={})
            run_ms.append((time.perf_counter() - t_run - t_steps) * 1000)
            for i in range(steps):
                t0 = time.perf_counter()
                store.get_step(run_id, f"{'search' if i % 3 == 1 else 'llm'}:{i}")
                replay_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "step_write_ms_median": statistics.median(step_ms),
        "step_write_ms_p90": statistics.quantiles(step_ms, n=10)[-1],
        "step_replay_ms_median": statistics.median(replay_ms),
        "run_overhead_ms_median": statistics.median(run_ms),
    }


async def _bench_checkpoints(url: str, n: int) -> float:
    """Median ms of one checkpoint write through the saver we ship (a small research-like state)."""
    from langgraph.checkpoint.base import empty_checkpoint

    state: dict[str, Any] = {
        "question": "q",
        "notes": ["Dawkins studied at Balliol College."] * 8,
        "answer": "",
    }
    times: list[float] = []
    async with open_checkpointer(url) as saver:
        config: Any = thread_config("bench")
        config["configurable"]["checkpoint_ns"] = ""
        for i in range(n):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = dict(state, step=i)
            checkpoint["channel_versions"] = {k: str(i + 1) for k in checkpoint["channel_values"]}
            t0 = time.perf_counter()
            config = await saver.aput(
                config, checkpoint, {"source": "loop", "step": i}, checkpoint["channel_versions"]
            )
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _sqlite_size(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--postgres", default=None, help="also measure this PostgreSQL URL (its tables get written)"
    )
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("NORMAL", "FULL"):
            path = Path(tmp) / f"bench-{sync.lower()}.db"
            url = f"sqlite:///{path}"
            store = SqlRunStore.from_url(url, synchronous=sync)
            store.ensure_schema()
            base = _sqlite_size(path)
            store.close()
            result = _bench_store(url, args.runs, args.steps, synchronous=sync)
            kib_per_run = (_sqlite_size(path) - base) / 1024 / args.runs
            print(
                f"SQLite synchronous={sync}: step write median {result['step_write_ms_median']:.2f} ms "
                f"(p90 {result['step_write_ms_p90']:.2f}), replay {result['step_replay_ms_median']:.3f} ms, "
                f"run overhead {result['run_overhead_ms_median']:.2f} ms, {kib_per_run:.1f} KiB per run "
                f"of {args.steps} steps"
            )
            if sync == "NORMAL":  # the default configuration is the one the headline figures describe
                figures.update(result)
                figures["db_kib_per_run"] = kib_per_run
            else:
                figures["step_write_ms_median_sync_full"] = result["step_write_ms_median"]
        figures["checkpoint_write_ms_median"] = asyncio.run(
            _bench_checkpoints(f"sqlite:///{Path(tmp) / 'cp.db'}", 200)
        )
        print(f"SQLite checkpoint write median {figures['checkpoint_write_ms_median']:.2f} ms")
    if args.postgres:
        pg = _bench_store(args.postgres, max(5, args.runs // 4), args.steps)
        figures["pg_step_write_ms_median"] = pg["step_write_ms_median"]
        print(f"PostgreSQL: step write median {pg['step_write_ms_median']:.2f} ms")
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
