"""The research loop's topology, in one place.

::

    START -> assess -> plan -> decide --search--> search -> read --> decide
                                  |--think---> think ------------> decide
                                  '--answer--> answer -> [report] -> END
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from leadline.agent.context import RunContext
from leadline.agent.nodes.answer import answer, route_after_answer
from leadline.agent.nodes.assess import assess
from leadline.agent.nodes.decide import decide, route
from leadline.agent.nodes.plan import plan
from leadline.agent.nodes.read import read
from leadline.agent.nodes.report import report
from leadline.agent.nodes.search import search
from leadline.agent.nodes.think import think
from leadline.agent.state import ResearchState
from leadline.agent.tracing import TracedGraph, traced_node

Node = Callable[..., Awaitable[dict[str, Any]]]
NodeWrapper = Callable[[str, Node], Node]
"""Takes a node's name and function and returns the function to register (the served graph binds its
run context this way; see :mod:`leadline.serve`)."""


def _as_is(name: str, fn: Node) -> Node:
    return fn


def build_graph(
    *,
    context_schema: type[Any] = RunContext,
    input_schema: type[Any] | None = None,
    wrap: NodeWrapper = _as_is,
) -> StateGraph[Any, Any, Any, Any]:
    """The loop's topology (assess, plan, then decide between search/read, think and answer, and report);
    the keyword arguments let a server give it a JSON context and input schema. Nodes are traced when
    OpenTelemetry is on.
    """
    graph = StateGraph(ResearchState, context_schema=context_schema, input_schema=input_schema)
    graph.add_node("assess", traced_node("assess", wrap("assess", assess)))
    graph.add_node("plan", traced_node("plan", wrap("plan", plan)))
    graph.add_node("decide", traced_node("decide", wrap("decide", decide)))
    graph.add_node("search", traced_node("search", wrap("search", search)))
    graph.add_node("read", traced_node("read", wrap("read", read)))
    graph.add_node("think", traced_node("think", wrap("think", think)))
    graph.add_node("answer", traced_node("answer", wrap("answer", answer)))
    graph.add_node("report", traced_node("report", wrap("report", report)))
    graph.add_edge(START, "assess")
    graph.add_edge("assess", "plan")
    graph.add_edge("plan", "decide")
    graph.add_conditional_edges("decide", route, {"search": "search", "think": "think", "answer": "answer"})
    graph.add_edge("search", "read")
    graph.add_edge("read", "decide")
    graph.add_edge("think", "decide")
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
        _plain.append(build_graph().compile())
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
