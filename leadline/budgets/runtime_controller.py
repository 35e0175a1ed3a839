"""The runtime controller in the loop: the belief and decision rule of :mod:`leadline.budgets.runtime`
driven by the research loop's own signals.

The adapter (:meth:`RuntimeController.signals`) maps what the loop sees onto the belief's two signals:

- after a search, "a relevant hit": the search brought new documents (``new_docs_last_search > 0``);
- after a think step, "converging": the candidate answer agrees with the previous one, or the samples
  agree / the answer's confidence is at least ``agree_threshold`` (when the observation carries them;
  the loop asks no model for log-probabilities today).

Probes that agree with high confidence twice in a row mean the answer is settled: the run is at its
plateau, so its expected curves are flattened from here and no further step pays ("answer now").
Bridge entities with queries pending make the search that found them a relevant hit.

After every step the controller answers now, continues on either axis, or — in a batch — draws one more
step from the :class:`~leadline.budgets.pool.BatchPool` when its allocation is spent and its belief says
more pays (the loop then widens the run's allocation by that grant); ``finish`` returns what a settled
run did not spend. Every decision's reason names the controller, where its numbers came from and the
values compared, so the run's trace says why each stop/continue decision was taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from leadline.budgets.adaptive import AdaptiveBatch, AdaptiveController
from leadline.budgets.controller import Allocation, Decision, RunObservation
from leadline.budgets.ledger import Budget
from leadline.budgets.pool import BatchPool
from leadline.budgets.runtime import (
    ACTIONS as ACTION_NAMES,
)
from leadline.budgets.runtime import (
    SEARCH,
    STOP,
    THINK,
    RuntimeModel,
    RuntimePolicy,
    lognormal_curve,
)
from leadline.budgets.runtime_dp import DPHorizon
from leadline.errors import ConfigError

SCALE_SD = 0.8
"""Spread (log scale) of a question's curve scales around the prior or fitted median."""


@dataclass
class _Counts:
    searches: int = 0
    hits: int = 0
    thinks: int = 0
    converging: int = 0
    agreeing_in_a_row: int = 0
    last_candidate: str | None = None
    evidence_at_think: int = -1


@dataclass
class RuntimeController:
    """Answer now, search, think, or draw from the batch pool — decided by the runtime belief."""

    model: RuntimeModel = field(default_factory=RuntimeModel.default)
    base: AdaptiveController | None = None
    """Gives the allocation (difficulty, curves, batch share); without one, the budget as given."""
    price: float = 2e-5
    """Quality per token-equivalent below which a step is not worth buying (one per batch)."""
    search_scale: float = 3.0
    """Prior median searches to reach 63% of the search curve (σ)."""
    token_scale: float = 1500.0
    """Prior median tokens to reach 63% of the token curve (τ)."""
    scale_sd: float = SCALE_SD
    kind_prior: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    pool: BatchPool | None = None
    share: tuple[int, int] | None = None
    """This run's share of a batch (tokens, searches) when there is no ``base``: its allocation."""
    agree_threshold: float = 0.8
    think_tokens: int | None = None
    """The cap of one think step the belief was priced with (a fitted controller's: its traces'); it
    replaces the allocation's, so a think costs and buys what the fit assumed. None: the allocation's."""
    answer_reserve: int = 64
    min_searches: int = 1
    lookahead: bool = True
    """False: the myopic rule (the best fixed bundle, no learning), for comparison."""
    rule: str = "dp"
    """With ``lookahead``: "dp" (the dynamic programme over the signal counts, the default) or
    "lookahead" (blocks of signals, then the best fixed continuation)."""
    horizon: DPHorizon = field(default_factory=lambda: DPHorizon(12, 24, 32))
    """How far the programme looks from where the run stands (it is solved again at every decision)."""

    allocation: Allocation | None = field(default=None, init=False)
    budget: Budget | None = field(default=None, init=False)
    granted: list[int] = field(default_factory=lambda: [0, 0], init=False)
    decisions: list[str] = field(default_factory=list, init=False)
    _counts: _Counts = field(default_factory=_Counts, init=False)
    _finished: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        """Which controller runs and where its numbers came from."""
        src = self.model.source
        note = "priors (no traces fitted)" if src == "prior" else f"fitted: {src}"
        rule = {"dp": "dynamic programme", "lookahead": "look-ahead"}.get(self.rule, self.rule)
        return f"runtime controller ({rule if self.lookahead else 'myopic'}; {note})"

    def assess(self, question: str, budget: Budget) -> Allocation:
        """The run's allocation before it starts; the belief starts from the model's prior."""
        self.budget = budget
        self._counts = _Counts()
        self.granted = [0, 0]
        self.decisions = []
        if self.base is not None:
            alloc = self.base.assess(question, budget)
        else:
            tokens, searches = self.share if self.share is not None else (budget.tokens, budget.searches)
            alloc = Allocation(
                tokens=min(tokens, budget.tokens),
                searches=min(searches, budget.searches),
                think_tokens=min(160, max(16, budget.tokens // 4)),
                reason="the batch share" if self.share is not None else "the budget as given",
            )
        if self.think_tokens is not None:
            think = max(16, min(self.think_tokens, alloc.tokens - self.answer_reserve))
            alloc = replace(alloc, think_tokens=think)
        self.allocation = replace(alloc, reason=f"{alloc.reason}; then {self.name}")
        return self.allocation

    # -- the adapter: loop signals -> belief counts ---------------------------------------------------
    def signals(self, o: RunObservation) -> _Counts:
        """Fold the steps taken since the last decision into the signal counts."""
        c = self._counts
        if o.searches_done > c.searches:
            new = o.searches_done - c.searches
            # A bridge entity with queries pending names the next hop: the search was relevant.
            relevant = o.new_docs_last_search > 0 or bool(o.bridge_entities and o.pending_queries > 0)
            c.hits += min(new, int(relevant))
            c.searches = o.searches_done
        if o.thinks_done > c.thinks:
            agree = False
            if o.candidate_answer:
                previous = c.last_candidate
                agree = previous is not None and _norm(previous) == _norm(o.candidate_answer)
                c.last_candidate = o.candidate_answer
            scores = [x for x in (o.confidence, o.sample_agreement) if x is not None and math.isfinite(x)]
            if scores:
                agree = agree or (sum(scores) / len(scores)) >= self.agree_threshold
            c.converging += int(agree)
            c.agreeing_in_a_row = c.agreeing_in_a_row + 1 if agree else 0
            c.thinks = o.thinks_done
            c.evidence_at_think = o.evidence_count
        return c

    def _curves(self, s_cap: int, c_cap: int, think: int, settled: bool) -> tuple[Any, Any]:
        mu_s = np.array([math.log(self.search_scale)])
        mu_t = np.array([math.log(self.token_scale / max(1, think))])
        gs = lognormal_curve(mu_s, self.scale_sd, s_cap)
        gt = lognormal_curve(mu_t, self.scale_sd, c_cap)
        if settled:  # the answer is settled: nothing more to gain from here
            c = self._counts
            gs[:, min(c.searches, s_cap) :] = gs[:, min(c.searches, s_cap)]
            gt[:, min(c.thinks, c_cap) :] = gt[:, min(c.thinks, c_cap)]
        return gs, gt

    def decide(self, observation: RunObservation) -> Decision:
        """Update the belief from the step's signals; answer, continue on an axis, or draw from the pool."""
        o = observation
        alloc, budget = self.allocation, self.budget
        if alloc is None or budget is None:
            raise ConfigError("decide() before assess()")
        c = self.signals(o)
        d = self._decide(o, alloc, budget, c)
        self.decisions.append(f"{d.action}: {d.reason}")
        return d

    def _decide(self, o: RunObservation, alloc: Allocation, budget: Budget, c: _Counts) -> Decision:
        think = max(16, alloc.think_tokens)
        if o.searches_done < self.min_searches and o.searches_left > 0:
            return Decision("search", "at least one search before an answer")
        # Caps: the run's hard limits (a grant from the pool can lift the allocation up to them).
        s_cap = max(o.searches_done, budget.searches)
        spent_tokens = max(0, alloc.tokens + self.granted[0] - o.tokens_left)
        c_cap = max(c.thinks, c.thinks + max(0, budget.tokens - spent_tokens - self.answer_reserve) // think)
        if o.thinks_left is not None:  # the budget's think steps (Budget.thinks)
            c_cap = min(c_cap, c.thinks + o.thinks_left)
        settled = c.agreeing_in_a_row >= 2
        gs, gt = self._curves(s_cap, c_cap, think, settled)
        policy = RuntimePolicy(
            self.model,
            search_cost=500.0 if budget.search_cost_tokens is None else float(budget.search_cost_tokens),
            think_cost=float(think),
            rule=self.rule,
            horizon=self.horizon,
        )
        dec = policy.decide(
            kind_prior=np.asarray([self.kind_prior]),
            gs=gs,
            gt=gt,
            searches=np.array([min(c.searches, s_cap)]),
            search_hits=np.array([c.hits]),
            thinks=np.array([min(c.thinks, c_cap)]),
            think_hits=np.array([c.converging]),
            price=self.price,
            lookahead=self.lookahead,
        )
        why = dec.reason(0) + (" — probes agree: settled" if settled else "")
        action = int(dec.action[0])
        if action == STOP:
            return Decision("answer", f"{self.name}: {why}")
        # The loop searches only with a query pending, and thinking twice over the same sources is idle.
        allowed = {
            SEARCH: o.searches_done == 0 or o.pending_queries > 0,
            THINK: (o.thinks_done == 0 or c.evidence_at_think != o.evidence_count) and o.thinks_left != 0,
        }
        value = {SEARCH: float(dec.search_value[0]), THINK: float(dec.think_value[0])}
        stop = float(dec.stop_value[0])
        # The preferred axis first, then the other one if it too beats answering now.
        order = [
            x
            for x in sorted((SEARCH, THINK), key=lambda x: (-value[x], x != action))
            if allowed[x] and value[x] > stop
        ]
        if not order:
            return Decision(
                "answer", f"{self.name}: {why}; no query pending and no new sources to think over"
            )
        for axis in order:
            kind = "search" if axis == SEARCH else "think"
            note = "" if axis == action else f"; {ACTION_NAMES[action]} not possible now"
            room = o.searches_left > 0 if axis == SEARCH else o.tokens_left >= think + self.answer_reserve
            if room:
                return Decision(kind, f"{self.name}: {why}{note}")  # type: ignore[arg-type]
            granted = self._draw(axis, think, alloc, budget)
            if granted is not None:
                return Decision(
                    kind,  # type: ignore[arg-type]
                    f"{self.name}: {why}{note}; allocation spent, {granted[0]} tokens / {granted[1]} searches"
                    " drawn from the pool",
                    extra_tokens=granted[0],
                    extra_searches=granted[1],
                )
        return Decision("answer", f"{self.name}: {why}; but the allocation is spent and the pool is empty")

    def _draw(self, axis: int, think: int, alloc: Allocation, budget: Budget) -> tuple[int, int] | None:
        """One more step's budget from the pool, within the run's hard caps; None when not granted."""
        if self.pool is None:
            return None
        want_t, want_s = (0, 1) if axis == SEARCH else (think + self.answer_reserve, 0)
        cap_t = max(0, budget.tokens - alloc.tokens - self.granted[0])
        cap_s = max(0, budget.searches - alloc.searches - self.granted[1])
        if want_t > cap_t or want_s > cap_s:
            return None
        got_t, got_s = self.pool.withdraw(want_t, want_s)
        if (got_t, got_s) != (want_t, want_s):
            self.pool.deposit(got_t, got_s)  # a partial grant buys no step: give it back
            return None
        self.granted[0] += got_t
        self.granted[1] += got_s
        return got_t, got_s

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        """Return what the run did not spend of its allocation (and grants) to the pool, once."""
        if self._finished:
            return
        self._finished = True
        if self.pool is None or self.allocation is None:
            return
        alloc, budget = self.allocation, self.budget
        cap_t = budget.tokens if budget is not None else alloc.tokens
        cap_s = budget.searches if budget is not None else alloc.searches
        spent_t = max(0, cap_t - int(tokens_unspent))
        spent_s = max(0, cap_s - int(searches_unspent))
        self.pool.deposit(
            max(0, alloc.tokens + self.granted[0] - spent_t),
            max(0, alloc.searches + self.granted[1] - spent_s),
        )


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def runtime_batch_controller(
    batch: AdaptiveBatch, model: RuntimeModel | None = None, **overrides: Any
) -> RuntimeController:
    """A runtime controller for one run of ``batch``: its plan share, its price and its shared pool.

    The base controller takes no budget from the pool at the start (``top_up=None``): budget moves
    to the runs whose belief says more pays, a step at a time, while they run.
    """
    base = batch.controller(top_up=None, pool=None)
    return RuntimeController(
        model=model or RuntimeModel.default(), base=base, price=batch.price, pool=batch.pool, **overrides
    )


__all__ = ["SCALE_SD", "RuntimeController", "runtime_batch_controller"]
