"""Checkpoints and steps in one database: a failed graph resumes from its checkpoint, paying nothing twice.

The graph here is a three-node LangGraph standing in for the research loop: ``plan`` and ``search``
record their side effects as steps under stable keys, replaying them when the key exists; ``answer``
crashes on the first attempt. Resuming with the same thread id must skip what the checkpoint holds
and replay what the store holds.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from leadline.storage.base import StepRecord
from leadline.storage.checkpoint import open_checkpointer, postgres_conninfo, thread_config
from leadline.storage.store import SqlRunStore


class State(TypedDict):
    question: str
    notes: Annotated[list[str], operator.add]
    answer: str


class Crash(Exception):
    pass


def _graph(store: SqlRunStore, run_id: str, spent: list[str], crash_once: list[bool]) -> StateGraph[Any]:
    def side_effect(key: str, kind: str, node: str, produce: str) -> str:
        recorded = store.get_step(run_id, key)
        if recorded is not None:
            return str(recorded.response["text"])
        spent.append(key)  # a real search / LLM call would happen here
        step = StepRecord(
            run_id=run_id,
            key=key,
            kind=kind,  # type: ignore[arg-type]
            node=node,
            response={"text": produce},
            searches=1 if kind == "search" else 0,
            completion_tokens=5 if kind == "llm" else 0,
        )
        return str(store.record_step(step).response["text"])

    def plan(state: State) -> dict[str, Any]:
        return {"notes": [side_effect("plan:0", "llm", "plan", "search Dawkins")]}

    def search(state: State) -> dict[str, Any]:
        return {"notes": [side_effect("search:0", "search", "search", "Dawkins studied at Oxford")]}

    def answer(state: State) -> dict[str, Any]:
        text = side_effect("answer:0", "llm", "answer", "Oxford")
        if crash_once:
            crash_once.pop()
            raise Crash("killed after the answer was recorded, before the checkpoint")
        return {"answer": text}

    graph: StateGraph[Any] = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("search", search)
    graph.add_node("answer", answer)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "search")
    graph.add_edge("search", "answer")
    graph.add_edge("answer", END)
    return graph


async def _crash_and_resume(url: str) -> tuple[SqlRunStore, str, list[str], dict[str, Any]]:
    store = SqlRunStore.from_url(url)
    run_id = store.create_run(
        question="Where did Dawkins study?", mode="answer", model="m", budget={}, settings={}
    )
    spent: list[str] = []
    async with open_checkpointer(url) as saver:
        app = _graph(store, run_id, spent, crash_once=[True]).compile(checkpointer=saver)
        with pytest.raises(Crash):
            await app.ainvoke({"question": "Where did Dawkins study?", "notes": []}, thread_config(run_id))
        assert spent == ["plan:0", "search:0", "answer:0"]
    # A new process would open everything afresh: so do we.
    async with open_checkpointer(url) as saver:
        app = _graph(store, run_id, spent, crash_once=[]).compile(checkpointer=saver)
        state = await app.aget_state(thread_config(run_id))
        assert state.next == ("answer",)
        final = await app.ainvoke(None, thread_config(run_id))
    return store, run_id, spent, final


def test_a_crashed_graph_resumes_without_spending_twice(db_url: str) -> None:
    store, run_id, spent, final = asyncio.run(_crash_and_resume(db_url))
    try:
        assert final["answer"] == "Oxford"
        assert final["notes"] == ["search Dawkins", "Dawkins studied at Oxford"]
        assert spent == ["plan:0", "search:0", "answer:0"]  # nothing paid again on resume
        totals = store.ledger_totals(run_id)
        assert (totals.completion_tokens, totals.searches, totals.llm_calls) == (10, 1, 2)
    finally:
        store.close()


async def _has_checkpoint(url: str, run_id: str) -> bool:
    async with open_checkpointer(url) as saver:
        return await saver.aget_tuple(thread_config(run_id)) is not None


def test_gc_drops_checkpoints_of_finished_runs_only(db_url: str) -> None:
    store, finished, _spent, _final = asyncio.run(_crash_and_resume(db_url))
    try:
        _store2, running, _s, _f = asyncio.run(_crash_and_resume(db_url))
        _store2.close()
        store.finish_run(finished, status="done", answer="Oxford")
        assert asyncio.run(_has_checkpoint(db_url, finished))
        assert store.gc_checkpoints(older_than_days=1) == 0  # finished just now: kept
        assert store.gc_checkpoints(older_than_days=0) == 1
        assert not asyncio.run(_has_checkpoint(db_url, finished))
        assert asyncio.run(_has_checkpoint(db_url, running))  # still resumable
        assert store.get_run(finished).answer == "Oxford"  # the record itself stays
        assert len(store.list_steps(finished)) == 3
        store.delete_run(running)
        assert not asyncio.run(_has_checkpoint(db_url, running))
    finally:
        store.close()


def test_postgres_conninfo_drops_the_driver_part() -> None:
    url = "postgresql+psycopg://u:secret@db.example:5433/runs?options=-csearch_path%3Dx"
    assert postgres_conninfo(url) == "postgresql://u:secret@db.example:5433/runs?options=-csearch_path%3Dx"
