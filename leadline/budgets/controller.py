"""The seam between the research loop and the budget controller.

The loop asks a :class:`Controller` twice: once in ``assess`` for the query's :class:`Allocation`
(how many tokens and searches, and the shape: parallel samples or one longer chain), then in every
``decide`` step for the next action given a :class:`RunObservation` of what the run has seen. The
controller never spends anything itself; the boundary wrappers and the ledger enforce the limits.

:class:`FixedController` is the plain policy: take the budget as given, search until the evidence
stops growing or the searches run out, then answer. The adaptive two-axis controller lives beside it
and implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol, runtime_checkable

from leadline.budgets.ledger import Budget

Action = Literal["search", "think", "answer"]
Shape = Literal["sequential", "parallel"]


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """What one query may spend, as decided before it starts."""

    tokens: int
    searches: int
    shape: Shape = "sequential"
    samples: int = 1
    """Parallel answer samples (voting) when ``shape`` is parallel."""
    difficulty: float = 0.5
    difficulty_uncertainty: float = 0.5
    think_tokens: int = 128
    """Cap of one think step."""
    reason: str = ""

    def to_state(self) -> dict[str, Any]:
        """The allocation as the loop's checkpointed state holds it (plain JSON)."""
        return asdict(self)

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None, budget: Budget) -> Allocation:
        """Read the allocation back from the loop's state; before ``assess`` set one, the budget itself.

        The one place the defaults live: keys an older checkpoint lacks take the field defaults, and
        keys this version does not know are ignored.
        """
        if not data:
            return cls(tokens=budget.tokens, searches=budget.searches)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("tokens", budget.tokens)
        values.setdefault("searches", budget.searches)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class RunObservation:
    """What the run has seen so far, as the controller needs it."""

    question: str
    step: int
    searches_done: int
    searches_left: int
    tokens_left: int
    thinks_done: int
    evidence_count: int
    new_docs_last_search: int
    pending_queries: int
    """Queries planned or proposed and not yet run."""
    candidate_answer: str | None = None
    confidence: float | None = None
    sample_agreement: float | None = None
    bridge_entities: tuple[str, ...] = field(default_factory=tuple)
    proposed_action: Action | None = None
    """What the model asked for, if it was asked; the controller may overrule it."""
    thinks_left: int | None = None
    """Think steps the budget still allows (``Budget.thinks``); None: no cap but the tokens."""


@dataclass(frozen=True)
class Decision:
    """The controller's next action and why."""

    action: Action
    reason: str
    extra_tokens: int = 0
    """Budget granted from a batch pool with this decision: the loop widens the run's allocation by it."""
    extra_searches: int = 0


@runtime_checkable
class Controller(Protocol):
    """What the loop asks about spending: an allocation before the run, then each next action."""

    def assess(self, question: str, budget: Budget) -> Allocation:
        """The query's allocation (tokens, searches, shape) before it starts."""

    def decide(self, observation: RunObservation) -> Decision:
        """The next action given what the run has seen."""

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        """Called once when a run ends; a batch controller returns the unspent budget to its pool."""
        ...


class FixedController:
    """The plain policy: spend the budget as given; search while it pays, think once, answer."""

    def __init__(self, *, min_searches: int = 1, think_tokens: int = 160) -> None:
        self.min_searches = min_searches
        self.think_tokens = think_tokens

    def assess(self, question: str, budget: Budget) -> Allocation:
        """The budget as given, sequential, with a think cap of at most a quarter of the tokens."""
        return Allocation(
            tokens=budget.tokens,
            searches=budget.searches,
            think_tokens=min(self.think_tokens, max(16, budget.tokens // 4)),
            reason="fixed: the budget as given",
        )

    def decide(self, observation: RunObservation) -> Decision:
        """Search while searches find new documents and queries are pending; think once with room; then
        answer.
        """
        o = observation
        if o.searches_done < self.min_searches and o.searches_left > 0:
            return Decision("search", "at least one search before an answer")
        if o.searches_left > 0 and o.pending_queries > 0 and o.new_docs_last_search > 0:
            return Decision("search", "planned queries remain and the last search found new documents")
        if o.thinks_done == 0 and o.tokens_left > self.think_tokens + 64 and o.thinks_left != 0:
            return Decision("think", "reason over the evidence once")
        if o.searches_left > 0 and o.pending_queries > 0 and o.thinks_done <= 1:
            return Decision("search", "follow-up query from reasoning")
        return Decision("answer", "evidence gathered")

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        """Nothing to return: the fixed policy has no pool."""
        return None


__all__ = ["Action", "Allocation", "Controller", "Decision", "FixedController", "RunObservation", "Shape"]
