"""Small helpers the nodes share: call ids, soft limits from the allocation, evidence selection."""

from __future__ import annotations

from leadline.agent.context import RunContext
from leadline.agent.state import Evidence, ResearchState, TraceEvent
from leadline.budgets.controller import Allocation


def call_id(state: ResearchState, node: str, ordinal: int = 0) -> str:
    """Stable id of a side effect: the graph step, the node and the call's ordinal within it."""
    return f"{state['step']:03d}:{node}:{ordinal}"


def allocation(state: ResearchState, ctx: RunContext) -> Allocation:
    """The query's allocation from the state (the run's budget before ``assess`` has set one)."""
    return Allocation.from_state(state.get("allocation"), ctx.budget)


def searches_left(state: ResearchState, ctx: RunContext) -> int:
    """Searches still allowed: the hard budget and the controller's allocation, whichever is lower."""
    alloc = allocation(state, ctx).searches
    return max(0, min(ctx.ledger.searches_left, alloc - state["searches_done"]))


def tokens_left(state: ResearchState, ctx: RunContext) -> int:
    """Generated tokens still allowed: the hard budget and the controller's allocation, whichever is lower."""
    alloc = allocation(state, ctx).tokens
    return max(0, min(ctx.ledger.tokens_left, alloc - ctx.ledger.spend.tokens))


def thinks_left(state: ResearchState, ctx: RunContext) -> int | None:
    """Think steps the budget still allows; None when it caps them only through the tokens."""
    cap = ctx.budget.thinks
    return None if cap is None else max(0, cap - state["thinks_done"])


def budget_line(state: ResearchState, ctx: RunContext) -> str:
    """The budget-awareness line shown to the model."""
    return f"Budget left: {tokens_left(state, ctx)} tokens, {searches_left(state, ctx)} searches."


def trace(state: ResearchState, node: str, action: str, detail: str = "") -> list[TraceEvent]:
    """One trace event of this step, as the state's reducer appends it."""
    return [TraceEvent(step=state["step"], node=node, action=action, detail=detail)]


def select_evidence(evidence: list[Evidence], limit: int) -> list[Evidence]:
    """The sources to show the model: the best-ranked of every query first, in citation order."""
    ranked = sorted(evidence, key=lambda e: (e["rank"], e["n"]))
    return sorted(ranked[:limit], key=lambda e: e["n"])
