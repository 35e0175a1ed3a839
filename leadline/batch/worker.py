"""A batch worker: claims jobs of one batch under a lease, runs them, and settles their grants.

Any number of workers, in any number of processes on any number of machines, can work on one batch
in one database. Each holds leases on the jobs it runs and renews them while it lives; a worker that
dies (SIGKILL, a lost machine) stops renewing, and once its leases pass another worker claims the job
and resumes its run from the last checkpoint — the run id is derived from the batch and the question,
so whoever takes a job over finds the run, and the recorded LLM calls and searches are replayed from
the store, never made again. A job's grant comes out of the batch pool when first claimed and its
unspent part goes back when the job finishes, in the same transactions (``storage/batches.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.batch.plan import BatchOptions
from leadline.budgets.controller import Allocation, Controller, Decision, FixedController, RunObservation
from leadline.budgets.ledger import Budget
from leadline.config import Settings
from leadline.errors import ConfigError, LeadlineError, RunNotFoundError
from leadline.llm.base import LLMClient
from leadline.result import ResearchResult
from leadline.storage.base import off_loop
from leadline.storage.checkpoint import open_checkpointer
from leadline.storage.engine import is_sqlite
from leadline.storage.records import JobRecord
from leadline.storage.store import SqlRunStore
from leadline.tools.base import Reader, SearchBackend

log = logging.getLogger(__name__)

CHECKPOINT_CONNECTIONS = 4
"""Checkpoint savers (database connections) per worker process; runs are spread over them."""
MIN_TOKENS = 16
"""A grant below this many tokens cannot produce an answer; such a job waits for budget to come back."""
_RUN_NAMESPACE = uuid.UUID("6f1d2b3c-9a4e-5b7d-8c1f-0e2a3b4c5d6e")
_controller: contextvars.ContextVar[Controller] = contextvars.ContextVar("leadline_batch_controller")


async def _async_commits(store: SqlRunStore, saver: Any) -> None:
    """PostgreSQL commits that do not wait for the WAL flush (``synchronous_commit = off``), on the
    worker's connections only.

    A flush costs milliseconds per commit on an ordinary disk, and a run commits at every step: waited
    for, it would be most of the orchestration time. What is given up: if the PostgreSQL *server*
    crashes, the last fraction of a second of commits is lost — whole transactions, never part of one —
    and the job or step they recorded is simply done again. A killed worker loses nothing; the server
    still flushes everything it acknowledged. ``BatchWorker(async_commit=False)`` (``--sync-commit``)
    waits for every flush.
    """
    from sqlalchemy import event

    if not event.contains(store.engine, "connect", _commit_without_flush):
        event.listen(store.engine, "connect", _commit_without_flush)
        store.engine.dispose()  # pooled connections predate the setting
    conn = getattr(saver, "conn", None)
    if conn is not None:
        await conn.execute("SET synchronous_commit = off")


def _commit_without_flush(dbapi_connection: Any, _record: Any) -> None:
    """A new store connection of a worker: ``synchronous_commit = off`` (see :func:`_async_commits`).
    One function, so the engine gets the listener once however many savers and workers share it."""
    with dbapi_connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
    dbapi_connection.commit()


class _SharedCheckpoints:
    """The worker's store with one checkpointer for all its runs (a store's own checkpointer is what
    ``wiring.open_checkpointer`` uses): one database connection for checkpoints, not one per run.

    A run created for a job (``jobs``: run id to job id) is linked to its job in the transaction that
    creates it."""

    def __init__(self, store: SqlRunStore, saver: Any, jobs: dict[str, int]) -> None:
        self._store = store
        self.checkpointer = saver
        self._jobs = jobs

    def create_run(self, **fields: Any) -> str:
        return self._store.create_run(**fields, job_id=self._jobs.get(fields.get("run_id") or ""))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _Resumed:
    """A controller for a run resumed past its ``assess`` step: a new controller has not seen the
    question yet, so it assesses it (same question, same caps) before its first decision."""

    def __init__(self, inner: Controller, question: str, budget: Budget) -> None:
        self.inner, self.question, self.budget = inner, question, budget
        self._assessed = False

    def assess(self, question: str, budget: Budget) -> Allocation:
        self._assessed = True
        return self.inner.assess(question, budget)

    def decide(self, observation: RunObservation) -> Decision:
        if not self._assessed:
            self.assess(self.question, self.budget)
        return self.inner.decide(observation)

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        self.inner.finish(tokens_unspent=tokens_unspent, searches_unspent=searches_unspent)


def run_id_for(batch_id: str, question_id: str) -> str:
    """The run id of a batch job: the same for every worker that ever takes the job."""
    return uuid.uuid5(_RUN_NAMESPACE, f"{batch_id}/{question_id}").hex


def default_worker_id() -> str:
    """host:pid:random, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class JobEvent:
    """What a worker reports as jobs move: ``claimed``, ``done``, ``failed`` or ``released``."""

    kind: str
    job: JobRecord
    worker: str
    error: str | None = None
    result: ResearchResult | None = None


@dataclass
class WorkerStats:
    """What one worker did."""

    worker: str
    done: int = 0
    failed: int = 0
    released: int = 0
    unfunded: int = 0
    errors: list[str] = field(default_factory=list)


def result_summary(result: ResearchResult) -> dict[str, Any]:
    """What a job keeps of its run for the reports: answer, sources, spend and the controller's decisions."""
    data = result.to_dict()
    trace = data.pop("trace", []) or []
    data["decisions"] = [t for t in trace if t.get("node") in ("assess", "decide")][-60:]
    return data


class BatchWorker:
    """Works on one batch until no job is left that it could take.

    ``concurrency`` runs at once in this process (asyncio tasks; useful against a server such as
    vLLM). Clients are built from the batch's stored settings unless given (tests inject fakes).
    """

    def __init__(
        self,
        store: SqlRunStore,
        batch_id: str,
        *,
        settings: Settings | None = None,
        worker_id: str | None = None,
        concurrency: int = 1,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
        llm: LLMClient | None = None,
        search: SearchBackend | None = None,
        reader: Reader | None = None,
        on_event: Callable[[JobEvent], None] | None = None,
        max_jobs: int | None = None,
        async_commit: bool = True,
        base_url: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        self.store = store
        self.batch_id = batch_id
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.on_event = on_event
        self.max_jobs = max_jobs
        self.async_commit = async_commit
        self.base_url = base_url
        """Overrides the batch's endpoint(s) for this worker (Ray spreads replicas over actors)."""
        self.stats = WorkerStats(self.worker_id)
        self._settings = settings
        self._llm, self._search, self._reader = llm, search, reader
        self._active = 0
        self._drained = False
        """Nothing is left to claim but this worker's own running jobs (:meth:`_wait_or_finish`)."""
        self._new_runs: dict[str, int] = {}
        """Run id to job id, for the runs being created now (linked to their job as they are made)."""
        self._claimed = 0
        self._watch: asyncio.Future[tuple[bool, int]] | None = None
        """The one look at the batch that this worker's idle slots share (see :meth:`_idle`)."""
        self._freed = asyncio.Event()
        """Set when a job of this worker ends (its unspent grant is back in the pool)."""
        self._ended = 0
        """Jobs of this worker ended so far (a look at the batch compares it before and after)."""

    def _clients(self, settings: Settings) -> tuple[LLMClient, SearchBackend, Reader | None, list[Any]]:
        """The model and search clients every run of this worker shares (built from settings unless given)."""
        from leadline.wiring import make_llm, make_search

        owned: list[Any] = []
        llm = self._llm
        if llm is None:
            urls = [u.strip() for u in (settings.base_url or "").split(",") if u.strip()]
            if len(urls) > 1:  # vLLM replicas: each call to the least loaded
                from leadline.batch.routing import LeastLoadedLLM

                llm = LeastLoadedLLM([make_llm(settings.with_(base_url=u)) for u in urls])
            else:
                llm = make_llm(settings)
            owned.append(llm)
        search, reader = self._search, self._reader
        if search is None:
            search, reader = make_search(settings, page_store=self.store)
            owned.extend(x for x in (search, reader) if x is not None)
        elif reader is None and isinstance(search, Reader):
            reader = search
        return llm, search, reader, list(dict.fromkeys(owned))

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> WorkerStats:
        """Claim and run jobs until none is left; returns what this worker did."""
        from leadline.api import Researcher

        record = self.store.get_batch(self.batch_id)
        options = BatchOptions.from_dict(record.settings["options"])
        price = float(record.settings.get("price", 0.0))
        db_url = self.store.url.render_as_string(hide_password=False)
        base = self._settings or Settings.from_env()
        research = record.settings.get("research", {})
        settings = base.with_(**research, db_url=db_url).with_(base_url=self.base_url)
        # the batch's links, not this worker's environment (a batch stored without any has none)
        settings = settings.with_(search_links=int(research.get("search_links", 0)))
        if self.concurrency > 1 and is_sqlite(db_url):
            raise ConfigError(
                "several runs at once in one process need PostgreSQL (SQLite has one writer, and a run "
                "waiting for it would stall the others): use --workers N processes, or a "
                "postgresql+psycopg:// database"
            )
        llm, search, reader, owned = self._clients(settings)
        beat = asyncio.create_task(self._heartbeat())
        try:
            async with contextlib.AsyncExitStack() as stack:
                # checkpoint writes of one saver go one at a time: spread the runs over a few savers
                researchers: list[Researcher] = []
                for _ in range(min(self.concurrency, CHECKPOINT_CONNECTIONS)):
                    saver = await stack.enter_async_context(open_checkpointer(db_url))
                    if self.async_commit and not is_sqlite(db_url):
                        await _async_commits(self.store, saver)
                    researcher = Researcher(
                        settings,
                        llm=llm,
                        search=search,
                        reader=reader,
                        store=_SharedCheckpoints(self.store, saver, self._new_runs),
                        controller=_controller.get,
                    )
                    if researchers:  # one engine, one store: λ is seeded and measured once
                        researcher._share_measurements(researchers[0])
                    researchers.append(researcher)
                slots = [
                    asyncio.create_task(self._slot(researchers[i % len(researchers)], options, price))
                    for i in range(self.concurrency)
                ]
                try:
                    await asyncio.gather(*slots)
                finally:
                    pending: list[asyncio.Future[Any]] = [*slots]
                    if self._watch is not None:
                        pending.append(self._watch)
                    for t in pending:
                        t.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            for client in owned:
                close = getattr(client, "aclose", None)
                if close is not None:
                    await close()
        if (await off_loop(self.store.batch_progress, self.batch_id)).finished:
            await off_loop(self.store.finish_batch, self.batch_id, status="done")
        return self.stats

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.lease_s / 3))
            try:
                await off_loop(
                    self.store.heartbeat, self.batch_id, worker=self.worker_id, lease_s=self.lease_s
                )
            except LeadlineError as exc:  # a database hiccup: the next beat tries again
                log.warning("lease renewal failed: %s", exc)

    async def _slot(self, researcher: Any, options: BatchOptions, price: float) -> None:
        # every database call of the worker runs in a worker thread: the event loop serves the runs
        while self.max_jobs is None or self._claimed < self.max_jobs:
            job = await off_loop(
                self.store.claim_job,
                self.batch_id,
                worker=self.worker_id,
                lease_s=self.lease_s,
                draw_from_pool=True,
                headroom=options.headroom,
                min_tokens=min(MIN_TOKENS, options.per_question.tokens),
            )
            if job is None:
                if not await self._idle():
                    return
                continue
            self._claimed += 1
            await self._do(researcher, job, options, price)

    async def _idle(self) -> bool:
        """No job could be claimed: True to try again, False when this worker is done with the batch.

        One look at the batch at a time serves all the slots that are idle (they share its answer), so
        a worker whose slots run dry at the end of a batch asks the database once per ``poll_s``, not
        once per slot: the slot that looked claims again (a lease may have passed), the others only when
        jobs are pending (budget came back, or a job was given back).
        """
        if self._drained:
            return False
        while True:
            looks = self._watch is None or self._watch.done()
            if looks:
                self._watch = asyncio.ensure_future(self._wait_or_finish())
            assert self._watch is not None
            more, pending = await asyncio.shield(self._watch)
            if not more:
                return False
            if looks or pending > 0:
                return True

    async def _wait_or_finish(self) -> tuple[bool, int]:
        """Wait while another run may finish or return budget: (True, jobs pending); else (False, 0)."""
        ended = self._ended  # a job of this worker that ends while the batch is read is not waited for
        p = await off_loop(self.store.batch_progress, self.batch_id)
        if p.pending == 0 and p.running == 0:
            return False, 0
        if p.pending == 0 and p.running <= self._active and not set(p.workers) - {self.worker_id}:
            # every running job is one of this worker's own, live in its other slots: none can come
            # back to be claimed (a job is given back only when the whole worker stops), so this slot
            # and every slot that runs dry after it is done without reading the batch again
            self._drained = True
            return False, 0
        others = bool(set(p.workers) - {self.worker_id}) or self._active > 0
        if not others:
            if p.pending > 0:  # nothing running can return budget: these jobs will never be funded
                n = await off_loop(
                    self.store.fail_unfunded,
                    self.batch_id,
                    error="the batch budget is spent: nothing left to grant this question",
                )
                self.stats.unfunded += n
                return True, 0
            if p.running == 0:
                return False, 0
        # until the next look, or until one of this worker's jobs ends and returns budget
        if self._ended == ended:
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), self.poll_s)
        return True, p.pending

    # -- one job -----------------------------------------------------------------------------------
    def _controller_for(self, job: JobRecord, options: BatchOptions, price: float) -> Controller:
        if options.controller == "fixed":
            return FixedController()
        from leadline.budgets.adaptive import AdaptiveController
        from leadline.budgets.allocation import QueryPlan
        from leadline.budgets.cost import CostModel

        cost = CostModel.for_budget(options.per_question)
        grant_t, grant_s = job.grant_tokens or 0, job.grant_searches or 0
        share = QueryPlan(
            tokens=min(job.share_tokens, grant_t),
            searches=min(job.share_searches, grant_s),
            cost=float(cost.cost(job.share_tokens, job.share_searches)),
            expected_quality=0.0,
        )

        def top_up(question: str, max_tokens: int, max_searches: int) -> tuple[int, int]:
            # the grant's part above the share came from budget other runs returned: it is this run's
            # to use where the curve says it pays at the batch price
            return (
                min(max_tokens, max(0, grant_t - share.tokens)),
                min(max_searches, max(0, grant_s - share.searches)),
            )

        kwargs: dict[str, Any] = {
            "cost": cost,
            "price": price,
            "plan": {job.question: share},
            "top_up": top_up,
        }
        if options.tuned is not None:
            from leadline.budgets.tuned import TunedModel

            return TunedModel.load(Path(options.tuned)).controller(**kwargs)
        if options.controller == "runtime":
            return _runtime_controller(options, AdaptiveController(**kwargs), price)
        return AdaptiveController(**kwargs)

    def _run_exists(self, run_id: str) -> bool:
        try:
            self.store.get_run(run_id)
        except RunNotFoundError:
            return False
        return True

    async def _settle(self, job: JobRecord, **kwargs: Any) -> bool:
        """``complete_job`` off the event loop; wakes the idle slots (the grant's rest is back)."""
        try:
            return await off_loop(self.store.complete_job, job.job_id, worker=self.worker_id, **kwargs)
        finally:
            self._ended += 1
            self._freed.set()

    def _emit(self, kind: str, job: JobRecord, **kw: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(JobEvent(kind, job, self.worker_id, **kw))
            except Exception:  # a display must never stop the batch
                log.warning("batch progress callback failed", exc_info=True)

    async def _do(self, researcher: Any, job: JobRecord, options: BatchOptions, price: float) -> None:
        run_id = run_id_for(self.batch_id, job.question_id)
        per = options.per_question
        budget = Budget(
            tokens=max(1, job.grant_tokens or 1),
            searches=max(1, job.grant_searches or 1),
            thinks=per.thinks,
            fetches=per.fetches,
            seconds=per.seconds,
            money=per.money,
            steps=per.steps,
            search_cost_tokens=per.search_cost_tokens,
        )
        self._active += 1
        self._emit("claimed", job)
        controller = self._controller_for(job, options, price)
        # only a worker that claimed the job creates its run: on a job's first claim there is none yet
        resuming = job.attempts > 1 and await off_loop(self._run_exists, run_id)
        token = _controller.set(_Resumed(controller, job.question, budget) if resuming else controller)
        try:
            if resuming:
                await off_loop(self.store.attach_run, job.job_id, run_id)
                result = await researcher.aresume(run_id)
            else:  # the run is linked to its job in the transaction that creates it
                self._new_runs[run_id] = job.job_id
                try:
                    result = await researcher.aresearch(
                        job.question, budget=budget, mode=options.mode, run_id=run_id
                    )
                finally:
                    self._new_runs.pop(run_id, None)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.store.release_job(job.job_id, worker=self.worker_id)
            self.stats.released += 1
            self._emit("released", job)
            raise
        except Exception as exc:  # the batch goes on: the job is recorded failed with its error
            message = exc.message if isinstance(exc, LeadlineError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, LeadlineError):
                log.error("job %s failed with an unexpected error", job.question_id, exc_info=True)
            kept = await off_loop(self._run_exists, run_id)
            await self._settle(
                job,
                status="failed",
                run_id=run_id if kept else None,
                error=message,
                spent_from_run=kept,
                keep_grant=kept,
            )
            self.stats.failed += 1
            self.stats.errors.append(f"{job.question_id}: {message}")
            self._emit("failed", job, error=message)
        else:
            if await self._settle(
                job, status="done", run_id=run_id, result=result_summary(result), spent_from_run=True
            ):
                self.stats.done += 1
                self._emit("done", job, result=result)
        finally:
            _controller.reset(token)
            self._active -= 1


def _runtime_controller(options: BatchOptions, base: Controller, price: float) -> Controller:
    """The runtime controller of one batch job: the plan's share and top-ups from ``base``, stop/continue
    by the fitted (or prior) belief. A step must pay at the fitted stop rule and at the batch price;
    what the run does not spend goes back to the batch pool when its job completes."""
    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.fitted import FittedController
    from leadline.budgets.runtime_controller import RuntimeController

    assert isinstance(base, AdaptiveController)
    if options.runtime is None:
        ctl = RuntimeController(base=base)
        ctl.price = max(ctl.price, price)
        return ctl
    fitted = FittedController.from_dict(options.runtime)
    return fitted.controller(base=base, price=max(fitted.price, price))


async def run_worker(store: SqlRunStore, batch_id: str, **kwargs: Any) -> WorkerStats:
    """Run one :class:`BatchWorker` on ``batch_id`` to the end."""
    return await BatchWorker(store, batch_id, **kwargs).run()


__all__ = [
    "BatchWorker",
    "JobEvent",
    "WorkerStats",
    "default_worker_id",
    "result_summary",
    "run_id_for",
    "run_worker",
]
