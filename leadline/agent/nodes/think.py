"""think: reason over the evidence; find bridge entities, an intermediate answer and a follow-up query."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import allocation, budget_line, call_id, select_evidence, trace
from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.prompts import THINK_BRIDGE_SCHEMA, THINK_SCHEMA, think_bridge_messages, think_messages
from leadline.agent.state import ResearchState
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams

BRIDGE = False
"""Name the bridge entity and keep a search for it (plan proposes one query fewer); measured in
docs/benchmarks.md."""


async def think(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The think node: reason over the shown sources for bridge facts, an intermediate answer and a
    follow-up query.
    """
    ctx = runtime.context
    update: dict[str, Any] = {
        "step": state["step"] + 1,
        "thinks_done": state["thinks_done"] + 1,
        "evidence_at_last_think": len(state["evidence"]),
    }
    shown = select_evidence(state["evidence"], ctx.max_evidence)
    build = think_bridge_messages if BRIDGE else think_messages
    messages = build(
        state["question"],
        shown,
        state["notes"],
        max_chars=ctx.evidence_chars,
        budget_line=budget_line(state, ctx),
    )
    max_tokens = allocation(state, ctx).think_tokens
    try:
        completion = await ctx.llm.chat(
            call_id(state, "think"),
            "think",
            messages,
            GenerationParams(
                max_tokens=max_tokens, json_schema=THINK_BRIDGE_SCHEMA if BRIDGE else THINK_SCHEMA
            ),
            reserve=ctx.answer_reserve,
        )
    except BudgetExceededError as exc:
        ctx.emit("think", "skipped", str(exc), state["step"])
        return {**update, "trace": trace(state, "think", "skipped", str(exc))}
    parsed = parse_json_object(completion.text) or {}
    known = as_text(parsed.get("known")) or completion.text.strip()[:300]
    answer_so_far = as_text(parsed.get("answer_so_far"))
    next_query = as_text(parsed.get("next_query"))
    bridge = as_text(parsed.get("bridge")) if BRIDGE else ""
    if bridge and bridge.lower() not in state["question"].lower():
        known = f"{known} (bridge: {bridge})" if known else f"bridge: {bridge}"
        if not next_query:
            next_query = bridge
    note = known + (f" (answer so far: {answer_so_far})" if answer_so_far else "")
    pending = list(state.get("pending_queries") or [])
    done = {q.lower() for q in state["queries_done"]} | {q.lower() for q in pending}
    if next_query and next_query.lower() not in done and next_query.lower() != state["question"].lower():
        pending.append(next_query)
    detail = f"next query: {next_query!r}" if next_query else "no follow-up query"
    ctx.emit("think", "think", detail, state["step"])
    return {
        **update,
        "notes": [note] if note else [],
        "pending_queries": pending,
        "candidate": {"answer": answer_so_far, "confidence": None}
        if answer_so_far
        else state.get("candidate"),
        "trace": trace(state, "think", "think", detail),
    }
