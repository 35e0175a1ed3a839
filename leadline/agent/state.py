"""The research loop's state: only what changes during a run, all of it JSON-serializable.

State is checkpointed after every node, so it holds no clients, no secrets and nothing large beyond the
evidence the model reads. Dependencies live in :class:`~leadline.agent.context.RunContext`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NotRequired, TypedDict, get_origin, get_type_hints


class Evidence(TypedDict):
    """One source the run has read. ``n`` is its citation number in prompts and answers."""

    n: int
    doc_id: str
    title: str
    url: str
    text: str
    query: str
    score: float
    rank: int
    """Rank in the search that found it (1 = best)."""


class TraceEvent(TypedDict):
    """One line of a run's trace: step, node, action and detail."""

    step: int
    node: str
    action: str
    detail: str


def merge_evidence(left: list[Evidence], right: list[Evidence]) -> list[Evidence]:
    """Append new sources, keeping the first copy of each document."""
    seen = {e["doc_id"] for e in left}
    merged = list(left)
    for e in right:
        if e["doc_id"] not in seen:
            seen.add(e["doc_id"])
            merged.append(e)
    return merged


class ResearchState(TypedDict):
    """The loop's checkpointed state; lists with reducers are appended to by the nodes."""

    question: str
    mode: Literal["answer", "report"]
    step: int
    allocation: NotRequired[dict[str, Any]]
    """``Allocation.to_state()``; nodes read it typed with ``Allocation.from_state`` (defaults there)."""
    pending_queries: NotRequired[list[str]]
    queries_done: Annotated[list[str], operator.add]
    results: NotRequired[list[dict[str, Any]]]
    """Search results waiting to be read."""
    evidence: Annotated[list[Evidence], merge_evidence]
    notes: Annotated[list[str], operator.add]
    """What think steps concluded (bridge entities, intermediate answers)."""
    searches_done: int
    thinks_done: int
    evidence_at_last_think: NotRequired[int]
    """How many sources the run had when it last thought: thinking again over the same ones is idle."""
    new_docs_last_search: int
    candidate: NotRequired[dict[str, Any] | None]
    next_action: NotRequired[str]
    forced: NotRequired[str | None]
    """Why the answer was forced (a limit), or None."""
    overrun: NotRequired[dict[str, float]]
    """What a backend spent past its grant or a cap, by limit (the ledger's overrun); empty when none."""
    answer: NotRequired[str]
    confidence: NotRequired[float | None]
    confidence_basis: NotRequired[str]
    """Where the confidence comes from, in words (sample agreement, the answer found in a source...)."""
    unsure: NotRequired[bool]
    """The answer is not grounded in the sources read, or was forced: present it as a guess."""
    citations: NotRequired[list[dict[str, Any]]]
    report: NotRequired[str | None]
    trace: Annotated[list[TraceEvent], operator.add]


REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    name: hint.__metadata__[0]
    for name, hint in get_type_hints(ResearchState, include_extras=True).items()
    if get_origin(hint) is Annotated
}
"""The channels whose updates are merged into the old value (their ``Annotated`` reducers above); the
rest replace it."""


def apply_update(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The state after one node's update, as LangGraph would apply it (the reducers above)."""
    after = dict(state)
    for key, value in update.items():
        merge = REDUCERS.get(key)
        after[key] = merge(after.get(key) or [], value) if merge is not None else value
    return after


def combine_updates(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """One update equal to applying ``first`` and then ``then`` (appending channels keep both parts in
    order; the reducers are associative over appended parts)."""
    combined = dict(first)
    for key, value in then.items():
        merge = REDUCERS.get(key)
        combined[key] = merge(combined[key], value) if merge is not None and key in combined else value
    return combined


def initial_state(question: str, mode: Literal["answer", "report"]) -> ResearchState:
    """The state a new run starts from."""
    return ResearchState(
        question=question,
        mode=mode,
        step=0,
        queries_done=[],
        evidence=[],
        notes=[],
        searches_done=0,
        thinks_done=0,
        new_docs_last_search=0,
        trace=[],
    )
