"""decide: the controller picks the next action; hard rules keep every run finite and grounded.

The rules hold whatever the controller or model says: at least one search before an answer, no search or
think past the budget's searches and think steps, a step cap that counts the steps an action leads to
(search, read and decide again; think and decide again) and the answer (and report) after them, and a
forced answer when a hard limit is reached (never a silent stop, never an endless loop).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import allocation, searches_left, thinks_left, tokens_left, trace
from leadline.agent.state import ResearchState
from leadline.budgets.controller import RunObservation


def observe(state: ResearchState, ctx: RunContext) -> RunObservation:
    """What the run has seen so far, as the controller reads it."""
    candidate = state.get("candidate") or {}
    return RunObservation(
        question=state["question"],
        step=state["step"],
        searches_done=state["searches_done"],
        searches_left=searches_left(state, ctx),
        tokens_left=tokens_left(state, ctx),
        thinks_done=state["thinks_done"],
        thinks_left=thinks_left(state, ctx),
        evidence_count=len(state["evidence"]),
        new_docs_last_search=state["new_docs_last_search"],
        pending_queries=len(state.get("pending_queries") or []),
        candidate_answer=candidate.get("answer") or None,
        confidence=candidate.get("confidence"),
    )


async def decide(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The decide node: the controller's next action, overruled by the loop's hard rules (step cap, spent
    budget, at least one search).
    """
    ctx = runtime.context
    obs = observe(state, ctx)
    think_tokens = allocation(state, ctx).think_tokens
    forced: str | None = None
    granted: dict[str, Any] | None = None
    exhausted = ctx.ledger.exhausted()
    # Graph steps still allowed after this one, less the run's end (answer, and the report in report mode).
    end = 2 if state["mode"] == "report" else 1
    room = ctx.budget.steps - (state["step"] + 1) - end
    if room <= 0:
        action, reason, forced = "answer", "step cap reached", "steps"
    elif exhausted is not None:
        action, reason, forced = "answer", f"{exhausted} budget used up", exhausted
    else:
        decision = ctx.controller.decide(obs)
        action, reason = decision.action, decision.reason
        if decision.extra_tokens > 0 or decision.extra_searches > 0:  # a grant from the batch pool
            current = allocation(state, ctx)
            grown = replace(
                current,
                tokens=current.tokens + decision.extra_tokens,
                searches=current.searches + decision.extra_searches,
            ).to_state()
            state = {**state, "allocation": grown}
            granted = grown
            obs = observe(state, ctx)
        if action == "answer" and obs.searches_done == 0 and obs.searches_left > 0:
            action, reason = "search", "at least one search before an answer"
        if action == "search" and obs.searches_left <= 0:
            action, reason = "answer", "no searches left"
            forced = "searches" if obs.searches_done == 0 else None
        if action == "think" and obs.thinks_left == 0:
            action, reason = "answer", "no think steps left"
        if action == "think" and obs.tokens_left < think_tokens // 2 + ctx.answer_reserve:
            action, reason = "answer", "too few tokens left to think"
        idle = state.get("evidence_at_last_think") == obs.evidence_count and obs.thinks_done > 0
        if action == "think" and idle:  # the same sources again would give the same thoughts
            if obs.searches_left > 0 and obs.pending_queries > 0:
                action, reason = "search", "no new sources since the last think: search the pending query"
            else:
                action, reason = "answer", "no new sources since the last think"
    # last, so that no rule above can turn the action into one the step cap has no room for
    if (action == "search" and room < 3) or (action == "think" and room < 2):
        # search, read and decide (or think and decide) would not leave the steps to answer
        action, reason, forced = "answer", "step cap reached", "steps"
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
