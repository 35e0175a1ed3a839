"""A research run's lifecycle: start or continue the graph, record how it ended, rebuild a finished run.

:class:`~leadline.api.Researcher` resolves the dependencies and the budget; this module runs one run
with them. A run ends in exactly one recorded status: ``done`` with its answer, ``interrupted``
(Ctrl-C, cancellation), or ``failed``. A :class:`~leadline.errors.LeadlineError` that ends a run carries
what it gathered (``run_data``: run id, spend, evidence, partial answer); a run that failed before its
first recorded step is deleted, so bad input or a dead server leaves no half-written run behind.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from leadline.agent.context import ProgressCallback, RunContext
from leadline.agent.graph import compile_graph
from leadline.agent.state import initial_state
from leadline.budgets.controller import Controller
from leadline.budgets.enforce import BudgetedLLM, BudgetedSearch, entry_for_step, steps_by_key
from leadline.budgets.ledger import Budget, Ledger
from leadline.budgets.timings import EngineTimings
from leadline.errors import LeadlineError
from leadline.llm.base import LLMClient
from leadline.result import Citation, ResearchResult
from leadline.storage.base import RunRecord, RunStore, off_loop
from leadline.storage.checkpoint import thread_config
from leadline.tools.base import Reader, SearchBackend

__all__ = ["Mode", "RunSetup", "fail_run", "final_state", "finished_result", "run_graph", "spend_record"]

Mode = Literal["answer", "report"]


@dataclass(frozen=True, kw_only=True)
class RunSetup:
    """Everything one run needs, resolved by the caller before the run starts."""

    run_id: str
    question: str
    mode: Mode
    budget: Budget
    llm: LLMClient
    search: SearchBackend
    reader: Reader | None
    store: RunStore
    controller: Controller
    checkpointer: AbstractAsyncContextManager[Any]
    """The LangGraph checkpointer to open for this run (``wiring.open_checkpointer(...)``)."""
    progress: ProgressCallback | None = None
    search_k: int = 5
    search_links: int = 0


async def run_graph(setup: RunSetup, *, resume: bool, timings: EngineTimings | None = None) -> ResearchResult:
    """Run (or, with ``resume``, continue) one research run to its end and record how it ended.

    A resumed run replays its recorded steps from the store instead of spending them again, and a run
    that had already finished is handed back from its last checkpoint. ``timings`` takes the finished
    run's ledger (λ's measurement).
    """
    run_id, store, budget = setup.run_id, setup.store, setup.budget
    ledger = Ledger(budget)
    # the run's recorded steps, read once: a resumed run replays them (its ledger starts from them),
    # a new run has none; the wrappers look a call up here instead of asking the store every time
    steps = await off_loop(store.list_steps, run_id) if resume else []
    ledger.restore([entry_for_step(s) for s in steps])
    recorded = steps_by_key(steps)
    ctx = RunContext(
        run_id=run_id,
        llm=BudgetedLLM(setup.llm, ledger, store, run_id, recorded=recorded),
        search=BudgetedSearch(setup.search, setup.reader, ledger, store, run_id, recorded=recorded),
        controller=setup.controller,
        ledger=ledger,
        budget=budget,
        store=store,
        progress=setup.progress,
        search_k=setup.search_k,
        search_links=setup.search_links,
    )
    config: dict[str, Any] = {"configurable": {"thread_id": run_id}, "recursion_limit": budget.steps + 10}
    state: dict[str, Any] | None = None
    async with setup.checkpointer as saver:
        graph = compile_graph(saver)
        try:
            start: dict[str, Any] | None = dict(initial_state(setup.question, setup.mode))
            if resume:
                snapshot = await graph.aget_state(config)
                if snapshot.values:
                    start = None  # continue from the last checkpoint
                    if not snapshot.next and not snapshot.tasks:  # it had finished
                        state = dict(snapshot.values)
            else:  # a run created just now has no checkpoint: the saver need not look for one
                expect_new = getattr(saver, "expect_new_thread", None)
                if expect_new is not None:
                    expect_new(run_id)
            if state is None:
                state = await graph.ainvoke(start, config, context=ctx, durability="sync")
        except (asyncio.CancelledError, KeyboardInterrupt):
            store.finish_run(run_id, status="interrupted", spend=spend_record(ledger), error="interrupted")
            raise
        except LeadlineError as exc:
            snapshot = await graph.aget_state(config)
            values = snapshot.values or {}
            exc.run_data.setdefault("evidence", list(values.get("evidence") or []))
            exc.run_data.setdefault("partial_answer", (values.get("candidate") or {}).get("answer"))
            fail_run(store, run_id, ledger, exc)
            raise
        except Exception as exc:  # an unexpected bug: record it, keep the run resumable, re-raise
            store.finish_run(run_id, status="failed", spend=spend_record(ledger), error=repr(exc))
            raise
    assert state is not None
    if timings is not None:
        timings.add(ledger.entries)
    result = ResearchResult.from_state(run_id, state, ledger.spend)
    await off_loop(
        store.finish_run,
        run_id,
        status="done",
        answer=result.answer,
        citations=[c for c in state.get("citations") or []],
        report=result.report,
        spend=spend_record(ledger),
    )
    setup.controller.finish(tokens_unspent=ledger.tokens_left, searches_unspent=ledger.searches_left)
    return result


def spend_record(ledger: Ledger) -> dict[str, Any]:
    """What a run record keeps of its spend: the ledger's totals, and ``overrun`` (what a backend spent
    past a grant or a cap, by limit) when there was any."""
    spend = ledger.spend.to_dict()
    overrun = ledger.overrun
    if overrun:
        spend["overrun"] = overrun
    return spend


def fail_run(store: RunStore, run_id: str, ledger: Ledger, exc: LeadlineError) -> None:
    """Record a failed run and put its id and spend in ``exc.run_data``; a run with no step is deleted."""
    steps = store.list_steps(run_id)
    exc.run_data.setdefault("run_id", run_id)
    exc.run_data.setdefault("spend", ledger.spend.to_dict())
    if not steps:  # nothing happened: leave no half-written run behind
        store.delete_run(run_id)
        exc.run_data["run_id"] = None
        return
    store.finish_run(run_id, status="failed", spend=spend_record(ledger), error=exc.message)


def finished_result(
    store: RunStore, record: RunRecord, final_state: dict[str, Any] | None = None
) -> ResearchResult:
    """A finished run's result, rebuilt from its record and recorded steps (nothing runs again).

    ``final_state`` is the run's last checkpoint (the loop's final state): with it the result also
    carries what the record does not keep — confidence and its basis, unsure, forced, the allocation and
    the trace.
    """
    budget = Budget.from_dict(record.budget)
    ledger = Ledger(budget)
    ledger.restore([entry_for_step(s) for s in store.list_steps(record.run_id)])
    spend = ledger.spend
    spend.seconds = float(record.spend.get("seconds", spend.seconds))
    state = final_state or {}
    return ResearchResult(
        run_id=record.run_id,
        question=record.question,
        answer=record.answer or "",
        citations=[Citation(**c) for c in record.citations],
        spend=spend,
        report=record.report,
        status="done",
        forced=state.get("forced"),
        overrun=dict(record.spend.get("overrun") or ledger.overrun),
        confidence=state.get("confidence"),
        confidence_basis=state.get("confidence_basis") or "",
        unsure=bool(state.get("unsure", False)),
        allocation=state.get("allocation") or {},
        trace=[dict(t) for t in state.get("trace") or []],
    )


async def final_state(checkpointer: AbstractAsyncContextManager[Any], run_id: str) -> dict[str, Any] | None:
    """The loop's state at a finished run's last checkpoint, or None when there is none."""
    async with checkpointer as saver:
        found = await saver.aget_tuple(thread_config(run_id))
    if found is None:
        return None
    values = found.checkpoint.get("channel_values") or {}
    return dict(values) if values.get("answer") is not None else None
