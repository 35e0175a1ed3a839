"""The Python API: ``research``, ``aresearch`` and ``Researcher``.

A :class:`Researcher` holds the clients (model, search, store) so many questions reuse them; each
question is one run of the LangGraph loop, recorded in the run store and checkpointed so that
``resume`` can finish it after a crash. Errors are typed (:mod:`leadline.errors`); an error that ends a
run carries what it gathered in ``run_data``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from leadline.agent.context import ProgressCallback
from leadline.budgets.adaptive import AdaptiveBatch
from leadline.budgets.controller import Controller, FixedController
from leadline.budgets.cost import CostModel
from leadline.budgets.ledger import Budget
from leadline.budgets.timings import EngineTimings, SearchPrice, earlier_ledgers, engine_key
from leadline.budgets.tuned import TunedModel
from leadline.config import Settings, check_search_links
from leadline.controller_choice import NAMES as CONTROLLER_NAMES
from leadline.controller_choice import choose_controller
from leadline.errors import (
    BudgetExceededError,
    ConfigError,
    InvalidBudgetError,
    InvalidQuestionError,
    LeadlineError,
)
from leadline.lifecycle import Mode, RunSetup, final_state, finished_result, run_graph
from leadline.llm.base import LLMClient
from leadline.result import ResearchResult
from leadline.storage.base import RunStore, off_loop
from leadline.tools.base import PageStore, Reader, SearchBackend
from leadline.wiring import make_llm, make_search, make_store, open_checkpointer

MAX_QUESTION_CHARS = 4000
T = TypeVar("T")


def validate_question(question: object) -> str:
    """The question with whitespace collapsed; an InvalidQuestionError for a non-string, an empty or an
    overlong one.
    """
    if not isinstance(question, str):
        raise InvalidQuestionError(f"the question must be a string, got {type(question).__name__}")
    text = " ".join(question.split())
    if not text:
        raise InvalidQuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return text


@dataclass(frozen=True)
class BatchItem:
    """The outcome of question ``index`` of a batch: its result, or the error that ended it."""

    index: int
    question: str
    outcome: ResearchResult | LeadlineError

    @property
    def ok(self) -> bool:
        """True when the question has a result."""
        return isinstance(self.outcome, ResearchResult)


_batch_executor: Callable[..., AsyncIterator[BatchItem]] | None = None
"""Runs a batch through the run database (worker processes, Ray); ``leadline.batch`` installs it."""


def register_batch_executor(executor: Callable[..., AsyncIterator[BatchItem]]) -> None:
    """Install the runner of :meth:`Researcher.abatch` for executors other than ``local`` (the batch
    package sits above this module and registers itself when imported)."""
    global _batch_executor
    _batch_executor = executor


def describe_controller(controller: object) -> str:
    """Which controller a run uses and where its numbers came from, as stored with the run."""
    name = getattr(controller, "name", None)
    inner = getattr(controller, "inner", None)  # a wrapper (a batch job's resumed controller)
    if not isinstance(name, str) and inner is not None:
        name = getattr(inner, "name", None)
    return name if isinstance(name, str) else type(inner or controller).__name__


def _validate_budget(budget: object) -> Budget:
    if budget is None:
        return Budget()
    if not isinstance(budget, Budget):
        raise InvalidBudgetError(f"budget must be a leadline.Budget, got {type(budget).__name__}")
    return budget


class _Measure:
    """λ's measurement of one engine: the timings seen, and the task seeding them from the store."""

    def __init__(self) -> None:
        self.timings = EngineTimings()
        self.seeding: asyncio.Future[None] | None = None
        """Reading earlier runs' timings into ``timings``, once, before the first run."""


class Researcher:
    """Answers research questions, reusing its model, search backend and store across questions.

    Every dependency can be injected (tests pass scripted fakes); the rest are built from ``settings``
    on first use. Use as a context manager, or call :meth:`aclose`.

    ``search_k`` is the sources a search brings; ``search_links`` the passages those link to that it
    brings besides (local corpora only: a passage links to the passages whose titles it names;
    docs/corpus-index.md, "Links"); unset, ``settings.search_links``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        llm: LLMClient | None = None,
        search: SearchBackend | None = None,
        reader: Reader | None = None,
        controller: Controller | Callable[[], Controller] | str | None = None,
        store: RunStore | None = None,
        search_k: int = 5,
        search_links: int | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        if isinstance(controller, str) and controller not in CONTROLLER_NAMES:
            raise ConfigError(f"unknown controller {controller!r}; use {', '.join(CONTROLLER_NAMES)}")
        self._llm = llm
        self._search = search
        self._reader = reader if reader is not None else (search if isinstance(search, Reader) else None)
        self._controller = controller
        self._store = store
        self.search_k = search_k
        self.search_links = check_search_links(
            self.settings.search_links if search_links is None else search_links
        )
        self._owns: list[Any] = []
        self._probed = False
        self._measure = _Measure()
        """Timings seen in this Researcher's runs, and their seed from the store (λ's measurement)."""
        self._runner: asyncio.Runner | None = None
        """The event loop of the synchronous API: one per Researcher, so async clients (httpx pools,
        the fetcher) live on the loop they were created on across calls."""

    # -- dependencies, built lazily ----------------------------------------------------------------
    @property
    def llm(self) -> LLMClient:
        """The LLM client, built from the settings on first use."""
        if self._llm is None:
            self._llm = make_llm(self.settings)
            self._owns.append(self._llm)
        return self._llm

    @property
    def search_backend(self) -> SearchBackend:
        """The search backend (and its reader), built from the settings on first use."""
        if self._search is None:
            store = self.store
            page_store = store if isinstance(store, PageStore) else None
            self._search, self._reader = make_search(self.settings, page_store=page_store)
            self._owns.extend(x for x in (self._search, self._reader) if x is not None)
        return self._search

    @property
    def store(self) -> RunStore:
        """The run store, built from the settings on first use."""
        if self._store is None:
            self._store = make_store(self.settings)
        return self._store

    def controller(self) -> Controller:
        """The controller for one run: the fixed policy by default, else the given one, a new one from
        the factory, or the one a name means (``"auto"``: the runtime controller, fitted for the model
        where a fitted file exists, as ``leadline ask`` runs by default; :mod:`leadline.controller_choice`).
        """
        if self._controller is None:
            return FixedController()
        if isinstance(self._controller, str):  # resolved once: a fitted file is read on first use
            self._controller = choose_controller(self._controller, None, self.settings).factory
        if isinstance(self._controller, Controller) and not isinstance(self._controller, type):
            return self._controller
        return self._controller()  # a factory (or a class): one controller per run

    # -- runs ----------------------------------------------------------------------------------------
    async def aresearch(
        self,
        question: str,
        *,
        budget: Budget | None = None,
        mode: Mode = "answer",
        progress: ProgressCallback | None = None,
        run_id: str | None = None,
    ) -> ResearchResult:
        """Research ``question`` and return the cited answer (and the report in report mode)."""
        text = validate_question(question)
        budget = _validate_budget(budget)
        if mode not in ("answer", "report"):
            raise ConfigError(f"mode must be 'answer' or 'report', got {mode!r}")
        # resolve every dependency before anything is written, so bad settings leave no trace
        search, llm, store = self.search_backend, self.llm, self.store
        await self._probe(llm)
        controller = self.controller()
        run_id = await off_loop(
            store.create_run,
            question=text,
            mode=mode,
            model=llm.model_name,
            budget=budget.to_dict(),
            settings={**self._run_settings(), "controller": describe_controller(controller)},
            run_id=run_id,
        )
        return await self._run(
            run_id, text, mode, budget, llm, search, store, progress, resume=False, controller=controller
        )

    @property
    def measured_search_cost(self) -> float | None:
        """λ measured on the engine in use: the tokens it generates in the wall time of one search, its
        reads and the prefill of what it brings, from earlier runs — this Researcher's, and from its
        first run on also the store's recent runs on the same engine (None before the first run).
        :attr:`search_price` has the parts."""
        return self._measure.timings.search_cost()

    @property
    def search_price(self) -> SearchPrice | None:
        """The measured λ with its parts (search, read and prefill seconds; decode rate)."""
        return self._measure.timings.price()

    async def _probe(self, llm: LLMClient) -> None:
        """Ask a server client which model it serves (and that it answers) once, before any run."""
        probe = getattr(llm, "probe", None)
        if probe is not None and not self._probed:
            await probe()
            self._probed = True

    async def aresume(self, run_id: str, *, progress: ProgressCallback | None = None) -> ResearchResult:
        """Finish an interrupted run: recorded calls are replayed, never spent again."""
        store = self.store
        record = await off_loop(store.get_run, run_id)
        budget = Budget.from_dict(record.budget)
        if record.status == "done":  # nothing to do: hand back what was recorded
            state = await final_state(open_checkpointer(store, self.settings), run_id)
            return finished_result(store, record, state)
        mode: Mode = "report" if record.mode == "report" else "answer"
        return await self._run(
            run_id, record.question, mode, budget, self.llm, self.search_backend, store, progress, resume=True
        )

    async def _run(
        self,
        run_id: str,
        question: str,
        mode: Mode,
        budget: Budget,
        llm: LLMClient,
        search: SearchBackend,
        store: RunStore,
        progress: ProgressCallback | None,
        *,
        resume: bool,
        controller: Controller | None = None,
    ) -> ResearchResult:
        """Resolve the run's controller, λ and checkpointer; :func:`leadline.lifecycle.run_graph` runs it."""
        await self._seed_timings(store, llm)
        measured = self._measure.timings.search_cost()
        if budget.search_cost_tokens is None and measured is not None:  # λ from the engine in use
            budget = replace(budget, search_cost_tokens=round(measured, 3))
        setup = RunSetup(
            run_id=run_id,
            question=question,
            mode=mode,
            budget=budget,
            llm=llm,
            search=search,
            reader=self._reader,
            store=store,
            controller=controller if controller is not None else self.controller(),
            checkpointer=open_checkpointer(store, self.settings),
            progress=progress,
            search_k=self.search_k,
            search_links=self.search_links,
        )
        return await run_graph(setup, resume=resume, timings=self._measure.timings)

    async def _seed_timings(self, store: RunStore, llm: LLMClient) -> None:
        """Seed λ's measurement from the store's earlier runs on this engine, once per Researcher.

        The store is read in a worker thread, never on the event loop (a batch's other runs go on), and
        the runs that start while it is read wait for it, so every run prices searches alike.
        """
        loop = asyncio.get_running_loop()
        measure = self._measure
        if measure.seeding is None:
            key = engine_key(llm.model_name, self._run_settings())

            async def seed() -> None:
                for entries in await off_loop(earlier_ledgers, store, key):
                    measure.timings.add(entries)

            measure.seeding = loop.create_task(seed())
        if measure.seeding.get_loop() is loop:  # seeded on another loop (an earlier sync call): done
            await asyncio.shield(measure.seeding)

    def _share_measurements(self, other: Researcher) -> None:
        """Measure λ together with ``other`` (same engine and store): one seed read and one set of
        timings for both — a batch worker's Researchers, one per checkpoint connection."""
        self._measure = other._measure

    def _run_settings(self) -> dict[str, Any]:
        s = self.settings
        return {
            "model": s.model,
            "base_url": s.base_url,
            "corpus": s.corpus,
            "search": s.search,
            "searxng_url": s.searxng_url,
            "seed": s.seed,
        }

    async def abatch(
        self,
        questions: Sequence[str],
        *,
        per_question: Budget | None = None,
        total_budget: Budget | None = None,
        adaptive: bool = True,
        concurrency: int = 1,
        mode: Mode = "answer",
        on_result: Callable[[int, ResearchResult | LeadlineError], None] | None = None,
        tuned: TunedModel | None = None,
        executor: Literal["local", "processes", "ray"] = "local",
        workers: int = 1,
        ray_address: str | None = None,
    ) -> AsyncIterator[BatchItem]:
        """Research many questions under one total budget; yields each :class:`BatchItem` as it finishes.

        The total is ``total_budget`` (its tokens and searches) or ``per_question`` times the number of
        questions. With ``adaptive`` the two-axis controller plans the whole batch (easy questions get
        less, hard ones more) and runs return what they do not spend to a pool that later runs draw from;
        ``tuned`` (from ``leadline tune --save``) gives it fitted curves instead of the priors. A failed
        question yields its error in place of a result; the batch goes on. ``executor`` ``local`` runs
        ``concurrency`` runs at once in this process; ``processes`` (``workers`` worker processes) and
        ``ray`` (Ray actors, ``ray_address``) go through the SQL run store (see ``leadline.batch``).
        """
        texts = [validate_question(q) for q in questions]
        per_question = _validate_budget(per_question)
        if total_budget is not None and not isinstance(total_budget, Budget):
            raise InvalidBudgetError(
                f"total_budget must be a leadline.Budget, got {type(total_budget).__name__}"
            )
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        if executor not in ("local", "processes", "ray"):
            raise ConfigError(f"unknown executor {executor!r}; use local, processes or ray")
        if executor != "local":
            if tuned is not None:
                raise ConfigError(
                    "tuned= works with the local executor; for workers use `leadline batch --tuned`"
                )
            if _batch_executor is None:
                raise ConfigError(f"executor {executor!r} needs leadline.batch (import leadline)")
            async for item in _batch_executor(
                self.store,
                self.settings,
                texts,
                per_question=per_question,
                total_budget=total_budget,
                adaptive=adaptive,
                concurrency=concurrency,
                mode=mode,
                executor=executor,
                workers=workers,
                ray_address=ray_address,
            ):
                if on_result is not None:
                    on_result(item.index, item.outcome)
                yield item
            return
        from leadline.budgets.pool import LocalGrants, fit_shares

        n = max(1, len(texts))
        total_t = total_budget.tokens if total_budget is not None else per_question.tokens * n
        total_s = total_budget.searches if total_budget is not None else per_question.searches * n
        batch: AdaptiveBatch | None = None
        shares = fit_shares([(per_question.tokens, per_question.searches)] * len(texts), total_t, total_s)
        if adaptive and texts:
            cost = CostModel.for_budget(per_question, measured=self.measured_search_cost)
            total = float(cost.cost(total_t, total_s))
            if tuned is not None:
                batch = tuned.batch(texts, total, cost)
            else:
                batch = AdaptiveBatch(texts, total_budget=total, cost=cost)
            shares = fit_shares(
                [(batch.plan[t].tokens, batch.plan[t].searches) for t in texts], total_t, total_s
            )
        # hard caps per run come out of one pool of the batch total, so the batch never spends more
        grants = LocalGrants(total_t, total_s, shares)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, text: str) -> BatchItem:
            async with gate:
                grant = await grants.take(i)
                if grant is None:
                    return BatchItem(
                        i, text, BudgetExceededError("the batch budget is spent: none left for this")
                    )
                if batch is not None:
                    runner = Researcher(
                        self.settings,
                        llm=self.llm,
                        search=self.search_backend,
                        reader=self._reader,
                        store=self.store,
                        controller=batch.controller(),
                        search_k=self.search_k,
                        search_links=self.search_links,
                    )
                    base = batch.budget_for(text, steps=per_question.steps)
                else:
                    runner, base = self, per_question
                budget = replace(base, tokens=grant[0], searches=grant[1], thinks=per_question.thinks)
                spent = grant  # unless the run says otherwise, assume it spent everything
                try:
                    result = await runner.aresearch(text, budget=budget, mode=mode)
                    spent = (result.spend.tokens, result.spend.searches)
                    outcome: ResearchResult | LeadlineError = result
                except LeadlineError as exc:
                    outcome = exc
                    if isinstance(exc.run_data.get("spend"), dict):
                        s = exc.run_data["spend"]
                        spent = (int(s.get("tokens", grant[0])), int(s.get("searches", grant[1])))
                finally:
                    await grants.settle(grant, *spent)
                return BatchItem(i, text, outcome)

        tasks = [asyncio.ensure_future(one(i, t)) for i, t in enumerate(texts)]
        try:
            for next_done in asyncio.as_completed(tasks):
                item = await next_done
                if on_result is not None:
                    on_result(item.index, item.outcome)
                yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _collect(self, questions: Sequence[str], **kwargs: Any) -> list[ResearchResult | LeadlineError]:
        items = [item async for item in self.abatch(questions, **kwargs)]
        return [item.outcome for item in sorted(items, key=lambda item: item.index)]

    def batch(self, questions: Sequence[str], **kwargs: Any) -> list[ResearchResult | LeadlineError]:
        """:meth:`abatch` to the end, synchronously: the outcomes in the order of the questions."""
        outcomes: list[ResearchResult | LeadlineError] = self._sync(self._collect(questions, **kwargs))
        return outcomes

    def research(self, question: str, **kwargs: Any) -> ResearchResult:
        """Synchronous :meth:`aresearch` (not from inside a running event loop)."""
        return self._sync(self.aresearch(question, **kwargs))

    def resume(self, run_id: str, **kwargs: Any) -> ResearchResult:
        """Synchronous :meth:`aresume`."""
        return self._sync(self.aresume(run_id, **kwargs))

    async def aclose(self) -> None:
        """Close the clients this Researcher built (injected ones stay open)."""
        for owned in reversed(self._owns):
            close = getattr(owned, "aclose", None)
            if close is not None:
                await close()
        self._owns.clear()

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        _refuse_inside_event_loop(coro)
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro)

    def close(self) -> None:
        """Synchronous :meth:`aclose`; also ends the event loop of the synchronous API."""
        if self._runner is None:
            if self._owns:
                _run_sync(self.aclose())
            return
        try:
            self._runner.run(self.aclose())
        finally:
            self._runner.close()
            self._runner = None

    async def __aenter__(self) -> Researcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Researcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _refuse_inside_event_loop(coro: Any) -> None:
    """The synchronous API cannot run inside an event loop: say so instead of deadlocking."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    coro.close()
    raise ConfigError("called from a running event loop: use the async API (aresearch / aresume)")


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    _refuse_inside_event_loop(coro)
    return asyncio.run(coro)


async def aresearch(
    question: str,
    *,
    budget: Budget | None = None,
    mode: Mode = "answer",
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    controller: str | None = None,
    **settings_overrides: Any,
) -> ResearchResult:
    """Research one question with a fresh :class:`Researcher` (settings from the environment);
    ``controller`` names one as :class:`Researcher` takes it (default: the budget as given)."""
    settings = settings or Settings.from_env(**settings_overrides)
    async with Researcher(settings, controller=controller) as researcher:
        return await researcher.aresearch(question, budget=budget, mode=mode, progress=progress)


def research(question: str, **kwargs: Any) -> ResearchResult:
    """Synchronous :func:`aresearch`."""
    return _run_sync(aresearch(question, **kwargs))
