"""The graph that ``langgraph dev`` serves (see langgraph.json).

The research loop needs live clients in its run context, which a server request cannot carry as JSON.
This one-node graph takes a question and budget as input, runs the full loop with a
:class:`~leadline.Researcher` built from the environment's settings (``LEADLINE_*``), and returns the
cited answer, so the LangGraph server and Studio can drive leadline as is.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class ServeInput(TypedDict):
    """What a caller of the served graph sends: the question and optional budget and mode."""

    question: str
    budget_tokens: NotRequired[int]
    budget_searches: NotRequired[int]
    mode: NotRequired[str]


class ServeState(ServeInput):
    """The served graph's state: the input plus the answer, citations and report."""

    answer: NotRequired[str]
    citations: NotRequired[list[dict[str, Any]]]
    report: NotRequired[str | None]
    spend: NotRequired[dict[str, Any]]
    run_id: NotRequired[str]


async def research_node(state: ServeState) -> dict[str, Any]:
    """The served graph's one node: research the question with a Researcher built from the environment."""
    from leadline.api import Researcher
    from leadline.budgets.ledger import Budget

    budget = Budget(tokens=state.get("budget_tokens", 1024), searches=state.get("budget_searches", 4))
    mode: Literal["answer", "report"] = "report" if state.get("mode") == "report" else "answer"
    async with Researcher() as researcher:
        result = await researcher.aresearch(state["question"], budget=budget, mode=mode)
    data = result.to_dict()
    return {k: data[k] for k in ("answer", "citations", "report", "spend", "run_id")}


def build_serving_graph() -> Any:
    """The graph ``langgraph dev`` serves: one research node from START to END."""
    graph = StateGraph(ServeState, input_schema=ServeInput)
    graph.add_node("research", research_node)
    graph.add_edge(START, "research")
    graph.add_edge("research", END)
    return graph.compile()


graph = build_serving_graph()
