"""assess: estimate the query's difficulty and get its allocation from the controller."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import trace
from leadline.agent.state import ResearchState


async def assess(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The assess node: the controller's allocation for the query, and the question as the first query."""
    ctx = runtime.context
    alloc = ctx.controller.assess(state["question"], ctx.budget)
    detail = (
        f"difficulty {alloc.difficulty:.2f}: up to {alloc.tokens} tokens, {alloc.searches} searches, "
        f"{alloc.shape}" + (f" x{alloc.samples}" if alloc.samples > 1 else "")
    )
    ctx.emit("assess", "allocate", detail, state["step"])
    return {
        "allocation": alloc.to_state(),
        "pending_queries": [state["question"]],
        "step": state["step"] + 1,
        "trace": trace(state, "assess", "allocate", detail),
    }
