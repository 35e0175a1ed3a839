"""The research loop's topology, in one place.

The loop's steps are the nodes of ``agent/nodes``; the graph runs some of them back to back inside one
graph node, so that a run takes fewer LangGraph super-steps (each costs a checkpoint and the framework's
step machinery, and under a batch's many runs that CPU is what limits throughput)::

    START -> assess+plan+decide --search--> search+read+decide --> (decide's choice)
                                |--think---> think+decide -------> (decide's choice)
                                '--answer--> answer -> [report] -> END

``decide`` runs at the end of the node before it, on the state that node leaves, and routes with a
``Command``. In the library's runs a choice to answer is carried out in that same node too, which then
routes to the report or the end; the served graph (Studio) keeps ``answer`` as a node of its own. The
steps, their order, their step numbers (and so the keys their calls are recorded under) and their trace
are the same either way; a checkpoint is taken after each graph node. The graph nodes are named for
their main step: ``plan`` (the entry: assess, plan, decide), ``search``, ``think``, ``answer`` and
``report``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from leadline.agent.context import RunContext
from leadline.agent.nodes.answer import answer, route_after_answer
from leadline.agent.nodes.assess import assess
from leadline.agent.nodes.decide import decide
from leadline.agent.nodes.plan import plan
from leadline.agent.nodes.read import read
from leadline.agent.nodes.report import report
from leadline.agent.nodes.search import search
from leadline.agent.nodes.think import think
from leadline.agent.state import ResearchState, apply_update, combine_updates
from leadline.agent.tracing import TracedGraph, traced_node

Node = Callable[..., Awaitable[Any]]
NodeWrapper = Callable[[str, Node], Node]
"""Takes a node's name and function and returns the function to register (the served graph binds its
run context this way; see :mod:`leadline.serve`)."""


def _as_is(name: str, fn: Node) -> Node:
    return fn


ACTIONS = ("search", "think", "answer")
"""The graph nodes decide can route to."""
ENTRY = "plan"
"""The graph node a run starts in (it assesses the question first)."""


def _then_decide(*steps: Node, answer_step: Node | None = None) -> Node:
    """One graph node that runs ``steps`` (the last is ``decide``) back to back, each on the state the one
    before it left, and routes to decide's choice (a ``Command``: no conditional edge reads the state
    again). With ``answer_step``, a choice to answer is carried out in the same node, which then routes
    to the report or the end: one super-step (and checkpoint) less a run."""

    async def node(state: ResearchState, runtime: Any) -> Command[str]:
        current: dict[str, Any] = dict(state)
        update: dict[str, Any] = {}
        for step in steps:
            part = await step(current, runtime)
            current = apply_update(current, part)
            update = combine_updates(update, part)
        goto = update["next_action"]
        if goto == "answer" and answer_step is not None:
            part = await answer_step(current, runtime)
            update = combine_updates(update, part)
            goto = "report" if current["mode"] == "report" else END  # as route_after_answer routes
        return Command(update=update, goto=goto)

    return node


def build_graph(
    *,
    context_schema: type[Any] = RunContext,
    input_schema: type[Any] | None = None,
    wrap: NodeWrapper = _as_is,
    fold_answer: bool = False,
) -> StateGraph[Any, Any, Any, Any]:
    """The loop's topology (assess, plan, then search/read, think or answer as decide chooses after
    each, and report); the keyword arguments let a server give it a JSON context and input schema.
    Each step is traced as its own node span when OpenTelemetry is on.

    With ``fold_answer`` the answer step runs inside the graph node whose ``decide`` chose it (the
    library's runs: one super-step and checkpoint less a run; the steps, their numbers, record keys and
    trace are the same). Without it ``answer`` is a graph node of its own, as the served graph shows it.
    The ``answer`` node exists either way (a checkpoint written before it can resume into it).
    """
    step = {
        name: traced_node(name, fn)
        for name, fn in {
            "assess": assess,
            "plan": plan,
            "decide": decide,
            "search": search,
            "read": read,
            "think": think,
        }.items()
    }
    answer_node = traced_node("answer", wrap("answer", answer))
    folded = answer_node if fold_answer else None
    after_decide = (*ACTIONS, "report", END) if fold_answer else ACTIONS
    graph = StateGraph(ResearchState, context_schema=context_schema, input_schema=input_schema)
    graph.add_node(
        ENTRY,
        wrap(ENTRY, _then_decide(step["assess"], step["plan"], step["decide"], answer_step=folded)),
        destinations=after_decide,
    )
    graph.add_node(
        "search",
        wrap("search", _then_decide(step["search"], step["read"], step["decide"], answer_step=folded)),
        destinations=after_decide,
    )
    graph.add_node(
        "think",
        wrap("think", _then_decide(step["think"], step["decide"], answer_step=folded)),
        destinations=after_decide,
    )
    graph.add_node("answer", answer_node)
    graph.add_node("report", traced_node("report", wrap("report", report)))
    graph.add_edge(START, ENTRY)
    graph.add_conditional_edges("answer", route_after_answer, {"report": "report", "end": END})
    graph.add_edge("report", END)
    return graph


_compiled: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Compiled graphs by checkpointer, so the runs sharing a checkpointer (a batch worker's) share one."""
_plain: list[Any] = []
"""The loop compiled once per process without a checkpointer: compiling takes ~0.15 s (LangGraph
inspects every node), while a copy of it bound to a checkpointer takes well under a millisecond and
keeps no run state."""


def _compiled_once() -> Any:
    if not _plain:
        _plain.append(build_graph(fold_answer=True).compile())
    return _plain[0]


def compile_graph(checkpointer: Any = None) -> Any:
    """The compiled loop; pass a LangGraph checkpointer to make runs resumable. Its runs and nodes make
    OpenTelemetry spans while tracing is on (:mod:`leadline.agent.tracing`)."""
    if checkpointer is None:
        return TracedGraph(_compiled_once())
    try:
        return _compiled[checkpointer]
    except KeyError:
        graph = _compiled[checkpointer] = TracedGraph(_compiled_once().copy({"checkpointer": checkpointer}))
        return graph
    except TypeError:  # a checkpointer that cannot be weakly referenced
        return TracedGraph(_compiled_once().copy({"checkpointer": checkpointer}))
