"""decide: the controller picks the next action; hard rules keep every run finite and grounded.

The rules hold whatever the controller or model says: at least one search before an answer, a step
cap, and a forced answer when a hard limit is reached (never a silent stop, never an endless loop).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import allocation, searches_left, tokens_left, trace
from leadline.agent.state import ResearchState
from leadline.budgets.controller import RunObservation


def observe(state: ResearchState, ctx: RunContext) -> RunObservation:
    candidate = state.get("candidate") or {}
    return RunObservation(
        question=state["question"],
        step=state["step"],
        searches_done=state["searches_done"],
        searches_left=searches_left(state, ctx),
        tokens_left=tokens_left(state, ctx),
        thinks_done=state["thinks_done"],
        evidence_count=len(state["evidence"]),
        new_docs_last_search=state["new_docs_last_search"],
        pending_queries=len(state.get("pending_queries") or []),
        candidate_answer=candidate.get("answer") or None,
        confidence=candidate.get("confidence"),
    )


async def decide(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    obs = observe(state, ctx)
    think_tokens = int(allocation(state).get("think_tokens", 128))
    forced: str | None = None
    granted: dict[str, Any] | None = None
    exhausted = ctx.ledger.exhausted()
    if state["step"] >= ctx.budget.steps - 2:
        action, reason, forced = "answer", "step cap reached", "steps"
    elif exhausted is not None:
        action, reason, forced = "answer", f"{exhausted} budget used up", exhausted
    else:
        decision = ctx.controller.decide(obs)
        action, reason = decision.action, decision.reason
        if decision.extra_tokens > 0 or decision.extra_searches > 0:  # a grant from the batch pool
            grown = dict(allocation(state))
            grown["tokens"] = int(grown.get("tokens", ctx.budget.tokens)) + decision.extra_tokens
            grown["searches"] = int(grown.get("searches", ctx.budget.searches)) + decision.extra_searches
            state = {**state, "allocation": grown}
            granted = grown
            obs = observe(state, ctx)
        if action == "answer" and obs.searches_done == 0 and obs.searches_left > 0:
            action, reason = "search", "at least one search before an answer"
        if action == "search" and obs.searches_left <= 0:
            action, reason = "answer", "no searches left"
            forced = "searches" if obs.searches_done == 0 else None
        if action == "think" and obs.tokens_left < think_tokens // 2 + ctx.answer_reserve:
            action, reason = "answer", "too few tokens left to think"
        idle = state.get("evidence_at_last_think") == obs.evidence_count and obs.thinks_done > 0
        if action == "think" and idle:  # the same sources again would give the same thoughts
            if obs.searches_left > 0 and obs.pending_queries > 0:
                action, reason = "search", "no new sources since the last think: search the pending query"
            else:
                action, reason = "answer", "no new sources since the last think"
    ctx.emit("decide", action, reason, state["step"])
    update: dict[str, Any] = {
        "next_action": action,
        "step": state["step"] + 1,
        "trace": trace(state, "decide", action, reason),
    }
    if forced is not None:
        update["forced"] = forced
    if granted is not None:
        update["allocation"] = granted
    return update


def route(state: ResearchState) -> str:
    return state.get("next_action", "answer")
