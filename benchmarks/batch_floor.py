"""How much of a batch run's CPU the components alone cost: a floor under ``speedup_32``.

32 runs in one process share one interpreter lock, so one process completes at most one run per CPU
second a run costs: ``speedup_32 <= T1 / cpu_per_run`` (T1: one run's wall time alone). This script
measures, side by side in one process and at 32 at once like ``benchmarks/batch.py``, the CPU per run of

- ``full``: the real batch worker (the loop, the store, PostgreSQL checkpoints, HTTP to the fake server
  that answers each call after 300 ms, the demo corpus) — what ``batch.py`` measures;
- ``graph_pg``: LangGraph alone with the same PostgreSQL checkpointer (``open_checkpointer``, 4 savers
  as the worker uses) and durability ``sync``: a graph of trivial nodes taking the same number of
  super-steps as a real run (one node routed to itself by a conditional edge), on a tiny state;
- ``graph``: the same graph with no checkpointer;
- ``http``: the real OpenAI-compatible client making as many calls a run as a real run makes, to the
  same fake server.

``graph_pg + http`` is a floor for any run of this shape on this stack whatever leadline's own code
does (its state, store and nodes come on top), so ``T1 / (graph_pg + http)`` is the most one process
could reach with these components on this machine. Target reading: 20× needs the full CPU per run at
or under ``T1 / 20``.

    .venv/bin/python benchmarks/batch_floor.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Ends with one line: ``cpu_ms_full= cpu_ms_graph_pg= cpu_ms_graph= cpu_ms_http= t1_ms=
floor_speedup_32= full_speedup_bound_32=``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import operator
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from batch import QUESTIONS, bench_environment  # noqa: E402  (the same server, corpus and questions)

LEVEL = 32
RUNS = 64


class TinyState(TypedDict):
    step: int
    trace: Annotated[list[str], operator.add]


async def at_once(n: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """CPU seconds of this process per item, running ``n`` items ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> None:
        async with gate:
            await one(i)

    cpu = time.process_time()
    await asyncio.gather(*(gated(i) for i in range(n)))
    return (time.process_time() - cpu) / n


GRAPH_NODE_STARTS = {"assess", "search", "think", "answer", "report"}
"""The loop step each graph node starts with (plan's node starts with assess; agent/graph.py)."""


def tiny_graph(steps: int, checkpointer: Any = None) -> Any:
    from langgraph.graph import END, START, StateGraph

    async def node(state: TinyState) -> dict[str, Any]:
        return {"step": state["step"] + 1, "trace": [f"step {state['step']}"]}

    graph = StateGraph(TinyState)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    graph.add_conditional_edges(
        "node", lambda s: "again" if s["step"] < steps else "end", {"again": "node", "end": END}
    )
    return graph.compile(checkpointer=checkpointer)


async def measure(url: str, base_url: str) -> dict[str, float]:
    from leadline.batch.inputs import read_questions
    from leadline.batch.plan import BatchOptions, open_batch
    from leadline.batch.worker import CHECKPOINT_CONNECTIONS, BatchWorker, JobEvent
    from leadline.budgets.ledger import Budget
    from leadline.config import Settings
    from leadline.llm.base import GenerationParams, Message
    from leadline.storage.checkpoint import open_checkpointer
    from leadline.storage.store import SqlRunStore
    from leadline.wiring import make_llm

    questions = read_questions(QUESTIONS).questions
    store = SqlRunStore.from_url(url)
    settings = Settings(base_url=base_url, corpus="demo", db_url=url)
    options = BatchOptions(per_question=Budget(tokens=512, searches=3))
    figures: dict[str, float] = {}

    # the real worker: one run alone (T1), then 32 at once; its steps and LLM calls per run
    warm = open_batch(store, "warmup", questions[-2:], settings, options)[0].batch_id
    await BatchWorker(store, warm, settings=settings).run()
    record, _ = open_batch(store, "alone", questions[:4], settings, options)
    t = time.perf_counter()
    await BatchWorker(store, record.batch_id, settings=settings).run()
    figures["t1"] = (time.perf_counter() - t) / 4
    record, _ = open_batch(store, "full", questions[:RUNS], settings, options)
    done: list[JobEvent] = []
    cpu = time.process_time()
    await BatchWorker(
        store, record.batch_id, settings=settings, concurrency=LEVEL, on_event=done.append
    ).run()
    results = [e.result for e in done if e.kind == "done" and e.result is not None]
    figures["full"] = (time.process_time() - cpu) / len(results)
    # super-steps: a graph node runs several of the loop's steps (agent/graph.py); count the first of each
    steps = round(sum(sum(t["node"] in GRAPH_NODE_STARTS for t in r.trace) for r in results) / len(results))
    calls = sum(1 for r in results for s in store.list_steps(r.run_id) if s.kind == "llm") / len(results)
    figures["steps"], figures["calls"] = steps, calls
    store.close()

    # LangGraph alone, with and without the PostgreSQL checkpointer
    plain = tiny_graph(steps)
    figures["graph"] = await at_once(RUNS, LEVEL, lambda i: plain.ainvoke({"step": 0, "trace": []}))
    async with contextlib.AsyncExitStack() as stack:
        savers = [
            await stack.enter_async_context(open_checkpointer(url)) for _ in range(CHECKPOINT_CONNECTIONS)
        ]
        graphs = [tiny_graph(steps, s) for s in savers]
        tag = uuid.uuid4().hex[:8]

        async def checkpointed(i: int) -> None:
            config = {"configurable": {"thread_id": f"floor-{tag}-{i}"}, "recursion_limit": steps + 10}
            await graphs[i % len(graphs)].ainvoke({"step": 0, "trace": []}, config, durability="sync")

        figures["graph_pg"] = await at_once(RUNS, LEVEL, checkpointed)

    # the HTTP client: a real run's number of calls to the same server
    llm = make_llm(settings)
    messages = [Message(role="user", content=questions[0].question)]
    n_calls = round(calls * RUNS)
    try:
        per_call = await at_once(
            n_calls, LEVEL, lambda i: llm.chat(messages, GenerationParams(max_tokens=64))
        )
    finally:
        await llm.aclose()
    figures["http"] = per_call * calls
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with bench_environment(args.pg, 0.3, "leadline-bench-floor-") as (url, base_url):
        f = asyncio.run(measure(url, base_url))
    ms = {k: f[k] * 1000 for k in ("full", "graph_pg", "graph", "http", "t1")}
    floor = ms["graph_pg"] + ms["http"]
    print(
        f"a run: {f['steps']:.0f} super-steps, {f['calls']:.1f} LLM calls; alone {ms['t1']:.0f} ms wall\n"
        f"CPU per run at {LEVEL} at once: full {ms['full']:.1f} ms; LangGraph + PostgreSQL checkpoints "
        f"{ms['graph_pg']:.1f} ms (LangGraph alone {ms['graph']:.1f}); HTTP client {ms['http']:.1f} ms\n"
        f"components' floor {floor:.1f} ms = {floor / ms['full']:.0%} of a run; 20x needs a run at or "
        f"under {ms['t1'] / 20:.1f} ms"
    )
    print(
        f"cpu_ms_full={ms['full']:.1f} cpu_ms_graph_pg={ms['graph_pg']:.1f} cpu_ms_graph={ms['graph']:.1f} "
        f"cpu_ms_http={ms['http']:.1f} t1_ms={ms['t1']:.0f} floor_speedup_32={ms['t1'] / floor:.1f} "
        f"full_speedup_bound_32={ms['t1'] / ms['full']:.1f}"
    )


if __name__ == "__main__":
    main()
