"""plan: decompose the question into first search queries (the question itself always comes first)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import budget_line, call_id, searches_left, tokens_left, trace
from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.prompts import PLAN_SCHEMA, plan_messages
from leadline.agent.state import ResearchState
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams

PLAN_TOKENS = 96


def _dedupe(queries: list[str], limit: int) -> list[str]:
    seen: set[str] = set()
    out = []
    for q in queries:
        key = " ".join(q.lower().split())
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out[:limit]


async def plan(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The plan node: the question itself is the first query; with searches to spare the model proposes
    more.
    """
    ctx = runtime.context
    question = state["question"]
    room = searches_left(state, ctx)
    from leadline.agent.nodes import think as think_node  # read at call time: a measured switch

    keep = 1 if think_node.BRIDGE and room > 2 else 0  # a search left for the bridge entity
    queries = [question]
    detail = "search the question as asked"
    if room > 1 and tokens_left(state, ctx) > PLAN_TOKENS + ctx.answer_reserve:
        messages = plan_messages(
            question, max_queries=min(3, room - 1 - keep), budget_line=budget_line(state, ctx)
        )
        try:
            completion = await ctx.llm.chat(
                call_id(state, "plan"),
                "plan",
                messages,
                GenerationParams(max_tokens=PLAN_TOKENS, json_schema=PLAN_SCHEMA),
                reserve=ctx.answer_reserve,
            )
            parsed = parse_json_object(completion.text) or {}
            proposed = parsed.get("queries") or []
            if isinstance(proposed, list):
                queries += [as_text(q) for q in proposed]
            detail = f"{len(queries)} queries"
        except BudgetExceededError:
            detail = "no tokens for planning"
    queries = _dedupe(queries, max(1, room - keep))
    ctx.emit("plan", "plan", "; ".join(queries), state["step"])
    return {
        "pending_queries": queries,
        "step": state["step"] + 1,
        "trace": trace(state, "plan", "plan", detail),
    }
