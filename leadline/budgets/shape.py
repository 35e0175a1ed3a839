"""Shape: spend a query's tokens on parallel samples with voting, or on one longer sequential chain.

Parallel sampling can buy coverage for independent, single-fact questions; a sequential chain is what a
compositional multi-hop question needs, since each hop builds on the last (Snell et al. 2024; the
sequential-versus-parallel results on graph connectivity). When the outcome table holds curves for
both shapes, the better expected quality at the allocated point decides. Without them the answer is one
chain: votes over samples were measured on the packaged models' train questions and changed no answer's
F1 at several times the tokens (docs/benchmarks.md), so voting is not the default. ``vote_single=True``
restores the question-type rule (single-fact questions with room for three samples vote).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadline.budgets.controller import Shape
from leadline.budgets.curves import GainCurve
from leadline.budgets.difficulty import QuestionType


@dataclass(frozen=True, kw_only=True)
class ShapeChoice:
    """The answer shape chosen for a query: parallel samples with voting, or one sequential chain."""

    shape: Shape
    samples: int
    think_tokens: int
    reason: str


def choose_shape(
    qtype: QuestionType,
    tokens: int,
    searches: int,
    *,
    curves: Mapping[Shape, GainCurve] | None = None,
    sample_tokens: int = 128,
    max_samples: int = 8,
    answer_reserve: int = 64,
    min_think_tokens: int = 48,
    max_think_tokens: int = 1024,
    vote_single: bool = False,
) -> ShapeChoice:
    """Pick the shape, the number of voting samples and the cap of one think step."""
    usable = max(0, tokens - answer_reserve)
    affordable = max(1, min(max_samples, tokens // max(1, sample_tokens)))
    if curves and "parallel" in curves and "sequential" in curves:
        q_par = float(curves["parallel"].value(tokens, searches))
        q_seq = float(curves["sequential"].value(tokens, searches))
        shape: Shape = "parallel" if q_par > q_seq and affordable >= 2 else "sequential"
        reason = f"curves: parallel {q_par:.3f} vs sequential {q_seq:.3f}"
    elif vote_single and qtype == "single" and affordable >= 3:
        shape, reason = "parallel", "single-fact question: sample and vote"
    elif vote_single:
        shape = "sequential"
        reason = (
            "compositional question: one longer chain"
            if qtype == "compositional"
            else "too few tokens to vote"
        )
    else:
        shape, reason = "sequential", "one chain (no curves say votes pay)"
    if shape == "parallel":
        samples = affordable if affordable % 2 else affordable - 1  # odd counts cannot tie
        samples = max(samples, 1)
        # Reasoning happens once; the samples share the rest.
        think = max(min_think_tokens, min(max_think_tokens, (usable - samples * sample_tokens) // 2))
        return ShapeChoice(shape="parallel", samples=samples, think_tokens=think, reason=reason)
    steps = max(1, min(searches, 4))
    think = max(min_think_tokens, min(max_think_tokens, usable // steps))
    return ShapeChoice(shape="sequential", samples=1, think_tokens=think, reason=reason)
