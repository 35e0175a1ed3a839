"""Running a batch to the end: workers (in this process, in worker processes, or on Ray), the live
progress display, and the reports written as questions finish.

The coordinator only watches the database: whatever runs the jobs, it polls the batch's progress,
writes the reports of questions that finished since the last look, and keeps the display current. So
the same code serves one process, ``--workers N`` processes on this machine, and workers elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leadline.batch.reports import write_index, write_question
from leadline.batch.worker import BatchWorker, JobEvent
from leadline.errors import ConfigError
from leadline.storage.records import BatchProgress, JobRecord
from leadline.storage.store import SqlRunStore

ExecutorName = Literal["local", "processes", "ray"]


def describe(p: BatchProgress) -> str:
    """One line: jobs by status and spend against the batch total."""
    return (
        f"{p.done} done, {p.running} running, {p.failed} failed, {p.pending} waiting of {p.total_jobs}; "
        f"spent {p.spent_tokens:,}/{p.total_tokens:,} tokens, "
        f"{p.spent_searches:,}/{p.total_searches:,} searches"
    )


class ReportWriter:
    """Writes each finished question's reports once, and the batch index, into ``out_dir``."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self._written: dict[str, tuple[str, Any]] = {}

    def update(self, jobs: Sequence[JobRecord]) -> list[JobRecord]:
        """Write the reports of jobs finished (or changed) since the last call; returns those jobs."""
        fresh = []
        for job in jobs:
            if job.status not in ("done", "failed"):
                continue
            key = (job.status, job.error or job.run_id)
            if self._written.get(job.question_id) == key:
                continue
            self._written[job.question_id] = key
            fresh.append(job)
            if self.out_dir is not None:
                write_question(job, self.out_dir)
        return fresh

    def index(self, batch_id: str, jobs: Sequence[JobRecord], progress: BatchProgress) -> Path | None:
        """Write the batch's index pages; returns the HTML one (None without an output folder)."""
        if self.out_dir is None:
            return None
        return write_index(batch_id, jobs, self.out_dir, describe(progress))[1]


class Display:
    """A live progress bar (done / running / failed, spend against the pool, time left) on a console."""

    def __init__(self, console: Any, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Display:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]batch[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TextColumn("[dim]eta[/]"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def update(self, p: BatchProgress) -> None:
        """Show the latest progress."""
        if self._progress is None:
            return
        desc = (
            f"[green]{p.done} done[/] [yellow]{p.running} running[/] [red]{p.failed} failed[/]  "
            f"[dim]tokens {p.spent_tokens:,}/{p.total_tokens:,} · "
            f"searches {p.spent_searches:,}/{p.total_searches:,}[/]"
        )
        if self._task is None:
            self._task = self._progress.add_task(desc, total=p.total_jobs, completed=p.done + p.failed)
        else:
            self._progress.update(
                self._task, description=desc, total=p.total_jobs, completed=p.done + p.failed
            )

    def line(self, text: str) -> None:
        """Print a line above the progress bar."""
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)


@dataclass
class BatchRun:
    """How to run a batch: the executor, how many workers and runs each, leases, outputs."""

    store: SqlRunStore
    batch_id: str
    db_url: str
    executor: ExecutorName = "local"
    workers: int = 1
    concurrency: int = 1
    lease_s: float = 60.0
    out_dir: Path | None = None
    ray_address: str | None = None
    base_urls: Sequence[str] = ()
    poll_s: float = 1.0
    trace: str | None = None
    """``otlp``: worker processes export spans too."""
    async_commit: bool = True
    worker_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`BatchWorker` arguments for the in-process executor (tests inject clients)."""


async def run_batch(
    run: BatchRun,
    *,
    display: Display | None = None,
    on_finished: Callable[[JobRecord], None] | None = None,
) -> BatchProgress:
    """Run the batch to the end with the chosen executor, writing reports as questions finish."""
    if run.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {run.workers}")
    writer = ReportWriter(run.out_dir)
    display = display or Display(None, enabled=False)
    stop = asyncio.Event()

    async def monitor() -> None:
        while True:
            _tick(run, writer, display, on_finished)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), run.poll_s)
            if stop.is_set():
                return

    watcher = asyncio.create_task(monitor())
    try:
        if run.executor == "local" and run.workers == 1:
            worker = BatchWorker(
                run.store,
                run.batch_id,
                concurrency=run.concurrency,
                lease_s=run.lease_s,
                **run.worker_kwargs,
            )
            await worker.run()
        elif run.executor in ("local", "processes"):
            await _run_processes(run)
        elif run.executor == "ray":
            from leadline.batch.ray_executor import run_on_ray

            await asyncio.to_thread(run_on_ray, run)
        else:
            raise ConfigError(f"unknown executor {run.executor!r}; use local or ray")
    finally:
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
    jobs = _tick(run, writer, display, on_finished)
    progress = run.store.batch_progress(run.batch_id)
    writer.index(run.batch_id, jobs, progress)
    return progress


def _tick(
    run: BatchRun, writer: ReportWriter, display: Display, on_finished: Callable[[JobRecord], None] | None
) -> list[JobRecord]:
    jobs = run.store.list_jobs(run.batch_id)
    fresh = writer.update(jobs)
    progress = run.store.batch_progress(run.batch_id)
    if fresh:
        writer.index(run.batch_id, jobs, progress)
    for job in fresh:
        if on_finished is not None:
            on_finished(job)
    display.update(progress)
    return jobs


def worker_command(run: BatchRun) -> list[str]:
    """The command line of one worker process for this batch."""
    return [
        sys.executable,
        "-m",
        "leadline.cli",
        "worker",
        run.batch_id,
        "--db",
        run.db_url,
        "--concurrency",
        str(run.concurrency),
        "--lease-seconds",
        str(run.lease_s),
        "--quiet",
        *(["--trace", run.trace] if run.trace else []),
        *([] if run.async_commit else ["--sync-commit"]),
    ]


async def prepare_checkpoints(db_url: str) -> None:
    """Set up the checkpoint tables once, before workers start: savers set up by several processes at
    once on a fresh PostgreSQL database can deadlock (an index built CONCURRENTLY waits for the other
    processes' transactions, which wait for the setup lock)."""
    from leadline.storage.checkpoint import open_checkpointer

    async with open_checkpointer(db_url):
        pass


async def _run_processes(run: BatchRun) -> None:
    """``--workers N``: N worker processes on this machine; Ctrl-C stops them cleanly (they give their
    jobs back), and a worker that dies leaves its jobs to the others once its leases pass."""
    await prepare_checkpoints(run.db_url)
    env = dict(os.environ)
    procs = [
        subprocess.Popen(worker_command(run), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _ in range(run.workers)
    ]
    try:
        while any(p.poll() is None for p in procs):
            await asyncio.sleep(0.2)
    except (asyncio.CancelledError, KeyboardInterrupt):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            if p.poll() is None:
                p.kill()
        raise
    failed = [p.returncode for p in procs if p.returncode not in (0, None)]
    if failed and len(failed) == len(procs):
        raise ConfigError(
            f"every worker process failed (exit codes {failed}); run `leadline worker` to see why"
        )


def summary_lines(progress: BatchProgress, out_dir: Path | None, elapsed_s: float) -> list[str]:
    """The end-of-batch summary."""
    lines = [describe(progress) + f" in {elapsed_s:.1f} s"]
    if progress.total_tokens:
        lines.append(
            f"pool left: {progress.pool_tokens:,} tokens, {progress.pool_searches:,} searches "
            f"(never more than the total is granted)"
        )
    if out_dir is not None:
        lines.append(f"reports: {out_dir / 'index.html'} (and index.md)")
    return lines


__all__ = [
    "BatchRun",
    "Display",
    "ExecutorName",
    "JobEvent",
    "ReportWriter",
    "describe",
    "prepare_checkpoints",
    "run_batch",
    "summary_lines",
    "worker_command",
]
