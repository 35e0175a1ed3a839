"""The adaptive two-axis controller: the :class:`~leadline.budgets.controller.Controller` the loop asks.

``assess`` estimates the question's difficulty, looks up its gain curve and allocates tokens and searches
(and the shape) by marginal gain per cost down to a price — for a batch, the batch plan's share, topped
up from the :class:`~leadline.budgets.pool.BatchPool` when the curve says more pays at the batch price.
``decide`` keeps a belief about the run: a search that brought no new documents lowers the value of the
next search, agreeing samples and a confident candidate answer lower the value of everything (the answer
may already be right), bridge entities with queries pending raise the value of the next hop. It stops
early when the best expected gain per unit of cost falls below the price. ``finish`` returns what the
run did not spend to the pool.

One controller serves one run (its belief is per run); :class:`AdaptiveBatch` hands out controllers
that share a curve model, a plan, a price and a pool.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from leadline.budgets.allocation import AllocationGrid, QueryPlan, allocate, prepare_batch
from leadline.budgets.controller import Allocation, Decision, RunObservation
from leadline.budgets.cost import CostModel
from leadline.budgets.curves import GainCurve, MixedCurve
from leadline.budgets.difficulty import Difficulty, DifficultyEstimator, TextFeatureEstimator
from leadline.budgets.fitting import BucketedCurves
from leadline.budgets.ledger import Budget
from leadline.budgets.pool import BatchPool
from leadline.budgets.shape import choose_shape
from leadline.errors import ConfigError

log = logging.getLogger(__name__)


class CurveModel(Protocol):
    """Maps a question's difficulty to the gain curve the allocator plans with."""

    def curve_for(self, difficulty: Difficulty) -> GainCurve:
        """The gain curve for a question of this difficulty."""


@dataclass(frozen=True)
class PriorCurves:
    """Curves before any outcome table exists: harder questions gain later and saturate lower.

    A prior, not a fit; :class:`DifficultyCurves` fitted on outcomes replaces it.
    """

    def curve_for(self, difficulty: Difficulty) -> GainCurve:
        """A prior mixed curve whose ceiling falls and scales grow with difficulty."""
        d = difficulty.score
        multi = difficulty.qtype == "compositional"
        ceiling = 0.9 - 0.5 * d
        return MixedCurve(
            q0=0.05 * (1 - d),
            a_tokens=ceiling * (0.15 if multi else 0.25),
            a_searches=ceiling * (0.25 if multi else 0.45),
            a_both=ceiling * (0.6 if multi else 0.3),
            tau=300.0 * (1 + 3 * d),
            sigma=1.0 + (3.0 if multi else 1.5) * d,
        )


@dataclass(frozen=True)
class DifficultyCurves:
    """Fitted curves per (question type, difficulty bin), the family chosen by held-out error."""

    edges: tuple[float, ...]
    curves: BucketedCurves

    def key(self, difficulty: Difficulty) -> Hashable:
        """The bucket of a difficulty: its question type and score bin."""
        return (difficulty.qtype, int(np.searchsorted(np.asarray(self.edges), difficulty.score)))

    def curve_for(self, difficulty: Difficulty) -> GainCurve:
        """The fitted curve of the difficulty's bucket (or the default)."""
        return self.curves.curve_for(self.key(difficulty))

    @classmethod
    def fit(
        cls,
        difficulties: Sequence[Difficulty],
        tokens: Sequence[float],
        searches: Sequence[float],
        quality: Sequence[float],
        groups: Sequence[Hashable],
        *,
        bins: int = 3,
        min_groups: int = 8,
        families: Sequence[str] | None = None,
    ) -> DifficultyCurves:
        """Fit from outcome rows; ``difficulties[i]`` is row i's question's estimate."""
        if not difficulties:
            raise ConfigError("no outcomes to fit gain curves on")
        scores = np.array([d.score for d in difficulties])
        per_question: dict[Hashable, float] = dict(zip(groups, scores.tolist(), strict=True))
        edges = tuple(np.quantile(list(per_question.values()), np.linspace(0, 1, bins + 1)[1:-1]).tolist())
        model = cls(edges=edges, curves=BucketedCurves(curves={}, default=MixedCurve()))
        keys = [model.key(d) for d in difficulties]
        kwargs: dict[str, Any] = {"min_groups": min_groups}
        if families is not None:
            kwargs["families"] = tuple(families)
        fitted = BucketedCurves.fit(keys, tokens, searches, quality, groups, **kwargs)
        return cls(edges=edges, curves=fitted)

    def to_dict(self) -> dict[str, Any]:
        """The bucket edges and fitted curves as JSON-ready data."""
        return {"edges": list(self.edges), "curves": self.curves.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DifficultyCurves:
        """Rebuild fitted curves from :meth:`to_dict` data."""
        return cls(edges=tuple(data["edges"]), curves=BucketedCurves.from_dict(data["curves"]))


@dataclass
class _Belief:
    search_factor: float = 1.0
    token_factor: float = 1.0
    solved: float = 0.0
    last_searches: int = 0


@dataclass
class AdaptiveController:
    """Difficulty → curve → allocation; then runtime belief updates and early stop by price."""

    estimator: DifficultyEstimator = field(default_factory=TextFeatureEstimator)
    curves: CurveModel = field(default_factory=PriorCurves)
    cost: CostModel | None = None
    grid: AllocationGrid = field(default_factory=lambda: AllocationGrid(token_step=64.0, max_tokens=8192.0))
    price: float = 2e-5
    """Stopping price: the least expected quality gain per token-equivalent worth buying."""
    pool: BatchPool | None = None
    plan: Mapping[str, QueryPlan] | None = None
    """A batch plan by question text; without one each query is allocated on its own."""
    top_up: Callable[[str, int, int], tuple[int, int]] | None = None
    """Draws extra (tokens, searches) for a question from the batch pool, at most the two limits given
    (the room under the run's hard caps); set by :class:`AdaptiveBatch`."""
    answer_reserve: int = 64
    min_searches: int = 1
    sample_tokens: int = 128
    vote_single_fact: bool = False
    """Answer single-fact questions with parallel samples and a vote when the tokens allow (off: votes
    measured no gain on the packaged models, :mod:`leadline.budgets.shape`)."""
    shrink_on_no_new_docs: float = 0.4

    allocation: Allocation | None = field(default=None, init=False)
    curve: GainCurve | None = field(default=None, init=False)
    difficulty: Difficulty | None = field(default=None, init=False)
    budget: Budget | None = field(default=None, init=False)
    _belief: _Belief = field(default_factory=_Belief, init=False)
    _finished: bool = field(default=False, init=False)

    # -- assess -----------------------------------------------------------------------------------
    def assess(self, question: str, budget: Budget) -> Allocation:
        """Estimate the question's difficulty and allocate tokens, searches and shape from its curve."""
        cost = self.cost or CostModel.for_budget(budget)
        self.cost = cost
        self.budget = budget
        try:
            difficulty = self.estimator.estimate(question)
        except Exception:  # an estimator must never stop a run: fall back to "unknown"
            log.warning("difficulty estimator failed; using an uninformed estimate", exc_info=True)
            difficulty = Difficulty(score=0.5, uncertainty=1.0)
        self.difficulty = difficulty
        try:
            self.curve = self.curves.curve_for(difficulty)
        except Exception:
            log.warning("no gain curve for this question; spending the budget as given", exc_info=True)
            self.curve = None
        tokens, searches, reason = self._amounts(question, budget, cost)
        # The loop accepts no answer before a search, and every answer needs some tokens.
        tokens = max(tokens, min(budget.tokens, self.answer_reserve))
        searches = max(searches, min(budget.searches, self.min_searches))
        choice = choose_shape(
            difficulty.qtype,
            tokens,
            searches,
            sample_tokens=self.sample_tokens,
            answer_reserve=self.answer_reserve,
            vote_single=self.vote_single_fact,
        )
        self.allocation = Allocation(
            tokens=tokens,
            searches=searches,
            shape=choice.shape,
            samples=choice.samples,
            difficulty=difficulty.score,
            difficulty_uncertainty=difficulty.uncertainty,
            think_tokens=min(choice.think_tokens, max(16, tokens - self.answer_reserve)),
            reason=f"{reason}; {choice.reason}",
        )
        self._belief = _Belief()
        return self.allocation

    def _amounts(self, question: str, budget: Budget, cost: CostModel) -> tuple[int, int, str]:
        if self.curve is None:
            return budget.tokens, budget.searches, "no curve: the budget as given"
        planned = self.plan.get(question) if self.plan is not None else None
        if planned is None:
            plan = allocate(
                self.curve,
                cost.budget_cost(budget),
                cost=cost,
                grid=self.grid,
                price=self.price,
                max_tokens=budget.tokens,
                max_searches=budget.searches,
            )
            return (
                plan.tokens,
                plan.searches,
                f"adaptive: d={self.difficulty.score if self.difficulty else 0.5:.2f}",
            )
        tokens, searches = planned.tokens, planned.searches
        reason = "batch plan share"
        if self.top_up is not None:
            # Budget returned by runs that stopped early: this run's share of a re-plan of the runs
            # not yet started, drawn from the pool.
            more_t, more_s = self.top_up(
                question, max(0, budget.tokens - tokens), max(0, budget.searches - searches)
            )
            if more_t or more_s:
                reason += f" + {more_t} tokens, {more_s} searches from the pool"
            tokens, searches = tokens + more_t, searches + more_s
        return min(tokens, budget.tokens), min(searches, budget.searches), reason

    # -- decide -----------------------------------------------------------------------------------
    def _update(self, o: RunObservation) -> None:
        b = self._belief
        if o.searches_done > b.last_searches:
            if o.new_docs_last_search <= 0:
                b.search_factor *= self.shrink_on_no_new_docs
            else:
                b.search_factor = min(1.0, b.search_factor * 1.25)
            b.last_searches = o.searches_done
        signals = [x for x in (o.confidence, o.sample_agreement) if x is not None and math.isfinite(x)]
        if o.candidate_answer and signals:
            b.solved = float(np.clip(sum(signals) / len(signals), 0.0, 0.99))
        if o.bridge_entities and o.pending_queries > 0:
            # An intermediate answer names the next hop: the next search is worth more than the curve says.
            b.search_factor = min(1.5, b.search_factor * 1.2)

    def decide(self, observation: RunObservation) -> Decision:
        """The next action from the updated belief: search, think or answer, stopping when the expected
        gain per cost falls below the price.
        """
        o = observation
        alloc = self.allocation
        if alloc is None:
            raise ConfigError("decide() before assess()")
        self._update(o)
        think = alloc.think_tokens
        # The loop reports what is left of the allocation or the hard caps, whichever is lower; the
        # allocation never exceeds the caps, so the tokens spent are the allocation less what is left.
        tokens_left = min(o.tokens_left, alloc.tokens)
        searches_left = min(o.searches_left, alloc.searches - o.searches_done)
        can_search = searches_left > 0 and (o.searches_done == 0 or o.pending_queries > 0)
        can_think = tokens_left >= think + self.answer_reserve and o.thinks_left != 0
        if o.searches_done < self.min_searches and searches_left > 0:
            return Decision("search", "at least one search before an answer")
        if not can_search and not can_think:
            return Decision("answer", "budget left only for the answer")
        if self.curve is None:
            if can_search and o.new_docs_last_search > 0:
                return Decision("search", "no curve: search while it finds new documents")
            return Decision("answer", "no curve: evidence gathered")
        lam = (self.cost or CostModel()).search_cost_tokens
        t_used = max(0, alloc.tokens - tokens_left)
        remaining = 1.0 - self._belief.solved
        gains: dict[str, float] = {}
        if can_search:
            t_at = float(alloc.tokens)  # the tokens will be spent anyway: value a search at the planned T
            g = float(self.curve.value(t_at, o.searches_done + 1) - self.curve.value(t_at, o.searches_done))
            gains["search"] = g * self._belief.search_factor * remaining / max(lam, 1.0)
        if can_think:
            s_at = float(max(o.searches_done, alloc.searches))
            g = float(self.curve.value(t_used + think, s_at) - self.curve.value(t_used, s_at))
            gains["think"] = g * self._belief.token_factor * remaining / think
        proposed = o.proposed_action
        if proposed in gains and gains[proposed] >= self.price:
            return Decision(proposed, f"model proposed {proposed}; gain/cost {gains[proposed]:.2e} ≥ price")
        best = max(gains, key=lambda k: gains[k])
        if gains[best] < self.price:
            return Decision(
                "answer",
                f"stop early: best gain/cost {gains[best]:.2e} ({best}) below price {self.price:.2e}",
            )
        return Decision(best, f"{best}: gain/cost {gains[best]:.2e}")  # type: ignore[arg-type]

    # -- finish -----------------------------------------------------------------------------------
    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        """Return what the run did not spend to the batch pool (once, even when called again)."""
        if self._finished:
            return  # a resumed or retried run must not return its budget twice
        self._finished = True
        if self.pool is None or self.allocation is None:
            return
        # Unspent counts against the allocation, not the (possibly larger) hard caps of the run.
        alloc = self.allocation
        cap_tokens = self.budget.tokens if self.budget is not None else alloc.tokens
        cap_searches = self.budget.searches if self.budget is not None else alloc.searches
        spent_tokens = max(0, cap_tokens - int(tokens_unspent))
        spent_searches = max(0, cap_searches - int(searches_unspent))
        self.pool.deposit(max(0, alloc.tokens - spent_tokens), max(0, alloc.searches - spent_searches))


@dataclass
class AdaptiveBatch:
    """A batch under one total budget: one plan, one price, one pool; a controller per run."""

    questions: Sequence[str]
    total_budget: float
    estimator: DifficultyEstimator = field(default_factory=TextFeatureEstimator)
    curves: CurveModel = field(default_factory=PriorCurves)
    cost: CostModel = field(default_factory=CostModel)
    grid: AllocationGrid = field(default_factory=lambda: AllocationGrid(token_step=64.0, max_tokens=8192.0))
    pool: BatchPool = field(default_factory=BatchPool)

    plan: dict[str, QueryPlan] = field(default_factory=dict, init=False)
    price: float = field(default=0.0, init=False)
    _curves: dict[str, GainCurve | None] = field(default_factory=dict, init=False, repr=False)
    _started: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for question in self.questions:
            try:
                self._curves[question] = self.curves.curve_for(self.estimator.estimate(question))
            except Exception:  # the uniform fallback covers it; the batch goes on
                log.warning("no curve for a batch question; it gets the uniform share", exc_info=True)
                self._curves[question] = None
        curves = [self._curves[q] for q in self.questions]
        plan = prepare_batch(curves, cost=self.cost, grid=self.grid).greedy(self.total_budget)
        self.plan = dict(zip(self.questions, plan.queries, strict=True))
        self.price = plan.price
        self.pool.deposit(max(0, int(plan.unspent)), 0)

    def top_up(self, question: str, max_tokens: int, max_searches: int) -> tuple[int, int]:
        """Extra budget for ``question`` as it starts: re-plan it with the runs not yet started, under
        their planned shares plus what is in the pool, and draw its gain (within the limits) from the pool."""
        with self._lock:
            self._started.add(question)
            waiting = [q for q in self.questions if q not in self._started]
        snap = self.pool.snapshot()
        if question not in self.plan or (snap.tokens == 0 and snap.searches == 0):
            return 0, 0
        group = [*waiting, question]
        total = sum(self.plan[q].cost for q in group) + self.cost.cost(snap.tokens, snap.searches)
        replanned = prepare_batch([self._curves[q] for q in group], cost=self.cost, grid=self.grid)
        share = replanned.greedy(total).queries[-1]
        planned = self.plan[question]
        return self.pool.withdraw(
            min(max_tokens, max(0, share.tokens - planned.tokens)),
            min(max_searches, max(0, share.searches - planned.searches)),
        )

    def controller(self, **overrides: Any) -> AdaptiveController:
        """A controller for one run of this batch: the batch's curves and cost, drawing on its pool."""
        base = AdaptiveController(
            estimator=self.estimator,
            curves=self.curves,
            cost=self.cost,
            grid=self.grid,
            price=self.price,
            pool=self.pool,
            plan=self.plan,
            top_up=self.top_up,
        )
        return replace(base, **overrides) if overrides else base

    def budget_for(self, question: str, *, headroom: float = 2.0, steps: int = 24) -> Budget:
        """Hard caps for one run of the batch: its planned share times ``headroom`` (room for pool top-ups).

        The controller keeps the run within its allocation; the caps bound what a top-up can add.
        """
        q = self.plan[question]
        return Budget(
            tokens=max(1, int(q.tokens * headroom), q.tokens + 64),
            searches=max(1, int(q.searches * headroom), q.searches + 1),
            steps=steps,
            search_cost_tokens=self.cost.search_cost_tokens,
        )


__all__ = [
    "AdaptiveBatch",
    "AdaptiveController",
    "CurveModel",
    "DifficultyCurves",
    "PriorCurves",
]
