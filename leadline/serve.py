"""The research loop as the LangGraph API server and Studio serve it (``langgraph dev``; see langgraph.json).

Studio sees the loop itself: plan (which assesses the question first), search, think, answer and report
are the graph's nodes (decide runs at the end of the first three: ``agent/graph.py``), its state is
inspectable and every node's update streams. The server calls :func:`make_graph` (a graph factory) for
each access; for a run it builds the run context from the environment's settings (``LEADLINE_*``, as the
CLI does) and the run's own LangGraph context (:class:`StudioContext`: the budget and the controller, a
form in Studio), and binds it to the nodes. The thread id is the run id: the run is recorded in
leadline's run store and its checkpoints go to the run database through :func:`checkpointer`
(langgraph.json names it), so ``leadline runs show``/``leadline resume THREAD_ID`` see a Studio run, and
a run interrupted in Studio resumes from the same checkpoints either way.

This module sits above the API (it builds a :class:`~leadline.Researcher` for the clients); nothing
below imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired

from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import TypedDict

from leadline.agent.context import RunContext
from leadline.agent.graph import ENTRY, Node, build_graph
from leadline.agent.state import ResearchState, initial_state
from leadline.api import Researcher, validate_question
from leadline.budgets.adaptive import AdaptiveController
from leadline.budgets.controller import Controller, FixedController
from leadline.budgets.enforce import BudgetedLLM, BudgetedSearch, entry_for_step
from leadline.budgets.ledger import Budget, Ledger
from leadline.config import Settings
from leadline.errors import ConfigError, LeadlineError, RunNotFoundError
from leadline.result import ResearchResult
from leadline.storage.base import RunStatus
from leadline.storage.engine import BUSY_TIMEOUT_MS, normalize_url, sqlite_path
from leadline.wiring import open_checkpointer

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph_sdk.runtime import ServerRuntime

__all__ = ["ServedRunError", "StudioContext", "StudioInput", "checkpointer", "make_graph"]


class ServedRunError(RuntimeError):
    """A leadline error as the server reports it: the server shows only builtin errors' messages, so the
    message of the :class:`~leadline.errors.LeadlineError` (its ``__cause__``) travels in this one."""


class StudioInput(TypedDict):
    """What a run starts from: the question, and ``report`` for a long-form report."""

    question: str
    mode: NotRequired[Literal["answer", "report"]]


@dataclass
class StudioContext:
    """The run's LangGraph context as the server takes it (JSON): its budget and controller."""

    budget_tokens: int = 1024
    """Generated tokens the run may spend."""
    budget_searches: int = 4
    """Search calls the run may make."""
    budget_seconds: float | None = None
    """Wall-clock limit in seconds (none by default)."""
    budget_thinks: int | None = None
    """Think steps the run may take (no cap but the tokens by default; 0 answers from the sources)."""
    search_cost: float | None = None
    """What one search costs the controller, in generated tokens (λ; default: measured on the engine)."""
    controller: Literal["fixed", "adaptive"] = "fixed"
    """fixed spends the budget as given; adaptive is the two-axis controller."""

    @classmethod
    def parse(cls, value: Any) -> StudioContext:
        """The context from a request (a dict, this class, or nothing), checked."""
        if value is None or isinstance(value, StudioContext):
            return value or cls()
        if not isinstance(value, dict):
            raise ConfigError(f"the run context must be an object, got {type(value).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"unknown run context field(s) {', '.join(unknown)}; known: {sorted(known)}")
        ctx = cls(**value)
        if ctx.controller not in ("fixed", "adaptive"):
            raise ConfigError(f"controller must be fixed or adaptive, got {ctx.controller!r}")
        return ctx

    def budget(self) -> Budget:
        """The run's budget from the context's fields."""
        return Budget(
            tokens=self.budget_tokens,
            searches=self.budget_searches,
            seconds=self.budget_seconds,
            thinks=self.budget_thinks,
            search_cost_tokens=self.search_cost,
        )

    def make_controller(self) -> Controller:
        """The controller the context names (fixed or adaptive)."""
        return AdaptiveController() if self.controller == "adaptive" else FixedController()


def _unbound(name: str, fn: Node) -> Node:
    """Nodes of a graph the server only reads (schemas, drawing, state): never run."""

    async def node(state: ResearchState, runtime: Runtime[Any]) -> dict[str, Any]:
        raise ConfigError(f"node {name} ran outside a server run")

    return node


def _graph_for_reading() -> Any:
    return build_graph(context_schema=StudioContext, input_schema=StudioInput, wrap=_unbound).compile()


_researchers: dict[tuple[Any, ...], Researcher] = {}
"""One Researcher per settings for the server's lifetime, so the model loads once, not per run."""


def _researcher(settings: Settings) -> Researcher:
    key = tuple(sorted((k, repr(v)) for k, v in dataclasses.asdict(settings).items()))
    if key not in _researchers:
        _researchers[key] = Researcher(settings)
    return _researchers[key]


class _Run:
    """One server run of the loop: its context, its record in the run store, its end."""

    def __init__(self, researcher: Researcher, run_id: str, options: StudioContext) -> None:
        store = researcher.store
        self.researcher, self.store, self.run_id = researcher, store, run_id
        try:
            record = store.get_run(run_id)
        except RunNotFoundError:
            record = None
        self.resumed = record is not None
        self.question = record.question if record is not None else None
        budget = Budget.from_dict(record.budget) if record is not None else options.budget()
        self.ledger = Ledger(budget)
        if record is not None:  # the same thread again: what it spent stays spent
            self.ledger.restore([entry_for_step(s) for s in store.list_steps(run_id)])
        llm, search = researcher.llm, researcher.search_backend
        self.context = RunContext(
            run_id=run_id,
            llm=BudgetedLLM(llm, self.ledger, store, run_id),
            search=BudgetedSearch(search, researcher._reader, self.ledger, store, run_id),
            controller=options.make_controller(),
            ledger=self.ledger,
            budget=budget,
            store=store,
            search_k=researcher.search_k,
            search_links=researcher.search_links,
        )

    def start(self, state: ResearchState) -> dict[str, Any]:
        """Before the first node: check the input, record the run, and fill in the state's defaults."""
        question = validate_question(state.get("question"))
        mode = state.get("mode") or "answer"
        if mode not in ("answer", "report"):
            raise ConfigError(f"mode must be 'answer' or 'report', got {mode!r}")
        if self.question is not None and self.question != question:
            raise ConfigError(f"thread {self.run_id} already researched another question; start a new thread")
        if self.question is None:
            self.store.create_run(
                question=question,
                mode=mode,
                model=self.researcher.llm.model_name,
                budget=self.ledger.budget.to_dict(),
                settings=self.researcher._run_settings(),
                run_id=self.run_id,
            )
            self.question = question
        defaults = dict(initial_state(question, mode))
        return {k: v for k, v in defaults.items() if k not in state or k in ("question", "mode")}

    def wrap(self, name: str, fn: Node) -> Node:
        ctx = self.context

        async def node(state: ResearchState, runtime: Runtime[Any]) -> Any:  # an update or a Command
            bound = runtime.override(context=ctx)
            try:
                if name != ENTRY:
                    return await fn(state, bound)
                start = self.start(state)
                update = await fn({**state, **start}, bound)
                if isinstance(update, Command):  # the entry node routes on: keep its choice
                    return Command(update={**start, **(update.update or {})}, goto=update.goto)
                return {**start, **update}
            except LeadlineError as exc:
                raise ServedRunError(f"{type(exc).__name__}: {exc.message}") from exc

        node.__name__ = name
        return node

    async def finish(self, graph: Any, config: dict[str, Any], error: BaseException | None) -> None:
        """Record how the run ended, as :class:`~leadline.Researcher` does for its own runs."""
        if self.question is None:  # it never started (bad input): nothing was recorded
            return
        spend = self.ledger.spend.to_dict()
        if error is not None:
            status: RunStatus = "failed" if isinstance(error, Exception) else "interrupted"
            cause = error.__cause__ if isinstance(error, ServedRunError) else error
            message = cause.message if isinstance(cause, LeadlineError) else (repr(error) or "interrupted")
            self.store.finish_run(self.run_id, status=status, spend=spend, error=message)
            return
        snapshot = await graph.aget_state(config)
        if snapshot.next:  # paused (an interrupt) with work left: it stays resumable
            self.store.finish_run(self.run_id, status="interrupted", spend=spend, error="interrupted")
            return
        state = dict(snapshot.values)
        result = ResearchResult.from_state(self.run_id, state, self.ledger.spend)
        self.store.finish_run(
            self.run_id,
            status="done",
            answer=result.answer,
            citations=list(state.get("citations") or []),
            report=result.report,
            spend=result.spend.to_dict(),
        )


@contextlib.asynccontextmanager
async def make_graph(config: RunnableConfig, runtime: ServerRuntime[Any]) -> AsyncIterator[Any]:
    """The graph factory langgraph.json names: the loop, with its run context built for a server run."""
    execution = runtime.execution_runtime
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if execution is None or not thread_id:  # schemas, drawing, state reads, stateless runs
        yield _graph_for_reading()
        return
    try:
        options = StudioContext.parse(execution.context)
        researcher = _researcher(Settings.from_env())
        run = _Run(researcher, str(thread_id), options)
    except LeadlineError as exc:
        raise ServedRunError(f"{type(exc).__name__}: {exc.message}") from exc
    graph = build_graph(context_schema=StudioContext, input_schema=StudioInput, wrap=run.wrap)
    async with _run_database_saver(researcher) as saver:
        compiled = graph.compile(checkpointer=saver)
        try:
            yield compiled
        except BaseException as exc:
            await run.finish(compiled, {"configurable": {"thread_id": run.run_id}}, exc)
            raise
        await run.finish(compiled, {"configurable": {"thread_id": run.run_id}}, None)


def _blocking_sqlite_saver(path: Path | None) -> SqliteSaver:
    """LangGraph's SQLite saver with its async methods run inline: each write commits before it returns.

    The server writes checkpoints in the background while the next node runs (``durability="async"``),
    and the run store writes the same SQLite file synchronously from that node. With the aiosqlite
    saver a checkpoint's transaction stays open across an ``await`` while the store's blocking write
    holds the event loop waiting for the lock: a deadlock until the busy timeout. Inline writes never
    hold the lock across an ``await``. Same tables as leadline's own saver, so ``leadline resume`` reads
    them.
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    class InlineSqliteSaver(SqliteSaver):
        async def aget_tuple(self, config: Any) -> Any:
            return self.get_tuple(config)

        async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
            for item in self.list(config, **kwargs):
                yield item

        async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            return self.put(config, checkpoint, metadata, new_versions)

        async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
            self.put_writes(config, writes, task_id, task_path)

        async def adelete_thread(self, thread_id: str) -> None:
            self.delete_thread(thread_id)

    target = str(path) if path is not None else ":memory:"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")
    saver = InlineSqliteSaver(conn)
    saver.setup()
    return saver


@contextlib.asynccontextmanager
async def _run_database_saver(researcher: Researcher) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The run database's checkpointer as the server uses it (inline on SQLite, see above)."""
    url = researcher.settings.database_url
    if (
        getattr(researcher.store, "checkpointer", None) is None
        and normalize_url(url).get_backend_name() == "sqlite"
    ):
        try:
            saver = _blocking_sqlite_saver(sqlite_path(url))
        except (OSError, sqlite3.Error) as exc:
            raise ServedRunError(f"cannot open the checkpoints in {url}: {exc}") from exc
        try:
            yield saver
        finally:
            saver.conn.close()
        return
    async with open_checkpointer(researcher.store, researcher.settings) as saver:
        yield saver


@contextlib.asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The server's checkpointer: leadline's own, on the run database (langgraph.json names it)."""
    async with _run_database_saver(_researcher(Settings.from_env())) as saver:
        yield saver
