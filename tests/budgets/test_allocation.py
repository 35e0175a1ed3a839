import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.budgets.allocation import (
    AllocationGrid,
    allocate,
    allocate_batch,
    prepare_batch,
)
from leadline.budgets.cost import CostModel
from leadline.budgets.curves import (
    ComplementsCurve,
    ConstantCurve,
    MixedCurve,
    SamplingCurve,
    SubstitutesCurve,
)
from leadline.errors import InvalidBudgetError

COST = CostModel(search_cost_tokens=500.0)
GRID = AllocationGrid(token_step=250.0, max_tokens=3000.0, max_searches=6)

amplitude = st.floats(0.05, 1.0)
tau = st.floats(50.0, 5000.0)
sigma = st.floats(0.3, 10.0)
concave_curve = st.one_of(
    st.builds(SubstitutesCurve, q0=st.floats(0, 0.2), a=amplitude, tau=tau, sigma=sigma),
    st.builds(SamplingCurve, a=amplitude, p=st.floats(0.01, 0.95)),
)
any_curve = st.one_of(
    concave_curve,
    st.builds(ComplementsCurve, a=amplitude, tau=tau, sigma=sigma),
    st.builds(
        MixedCurve,
        a_tokens=st.floats(0, 0.4),
        a_searches=st.floats(0, 0.4),
        a_both=st.floats(0, 0.4),
        tau=tau,
        sigma=sigma,
    ),
)
budgets = st.floats(0.0, 12000.0)
SETTINGS = settings(max_examples=40, deadline=None)


def _quality(plan) -> float:  # type: ignore[no-untyped-def]
    return sum(q.expected_quality for q in plan.queries)


@SETTINGS
@given(st.lists(any_curve, min_size=1, max_size=8), budgets, st.floats(0.0, 1e-3))
def test_never_over_budget(curves, per_query, price) -> None:  # type: ignore[no-untyped-def]
    total = per_query * len(curves)
    plans = [
        allocate_batch(curves, total, method=method, cost=COST, grid=GRID, price=price)
        for method in ("greedy", "heap", "lagrangian")
    ]
    # The sorted greedy is the heap's pop order: the same plan, on any curves.
    assert [(q.tokens, q.searches) for q in plans[0].queries] == [
        (q.tokens, q.searches) for q in plans[1].queries
    ]
    for plan in plans:
        assert plan.spent <= total + 1e-6
        for q in plan.queries:
            assert q.cost == pytest.approx(q.tokens + 500.0 * q.searches, abs=1.0)
            assert 0 <= q.tokens <= GRID.max_tokens and 0 <= q.searches <= GRID.max_searches


@SETTINGS
@given(st.lists(any_curve, min_size=1, max_size=8), budgets, budgets)
def test_quality_is_monotone_in_the_budget(curves, b1, b2) -> None:  # type: ignore[no-untyped-def]
    lo, hi = sorted((b1, b2))
    prepared = prepare_batch(curves, cost=COST, grid=GRID)
    n = len(curves)
    assert _quality(prepared.greedy(hi * n)) >= _quality(prepared.greedy(lo * n)) - 1e-9
    assert _quality(prepared.lagrangian(hi * n)) >= _quality(prepared.lagrangian(lo * n)) - 1e-9


@SETTINGS
@given(st.lists(concave_curve, min_size=1, max_size=8), budgets)
def test_greedy_and_lagrangian_agree_on_concave_curves(curves, per_query) -> None:  # type: ignore[no-untyped-def]
    prepared = prepare_batch(curves, cost=COST, grid=GRID)
    greedy = prepared.greedy(per_query * len(curves))
    dual = prepared.lagrangian(per_query * len(curves))
    heap = prepared.heap(per_query * len(curves))
    assert [(q.tokens, q.searches) for q in heap.queries] == [(q.tokens, q.searches) for q in greedy.queries]
    # The dual stops at a price; the greedy may add what still fits after it. At most one increment apart.
    p = prepared.profiles
    assert p is not None
    largest_step = float(np.max(np.diff(p.value, axis=1), initial=0.0)) * float(prepared.size.max())
    assert _quality(dual) - 1e-9 <= _quality(greedy) <= _quality(dual) + largest_step + 1e-9


@SETTINGS
@given(any_curve, st.lists(any_curve, max_size=5), st.integers(2, 5), budgets)
def test_identical_queries_get_identical_shares(curve, others, copies, per_query) -> None:  # type: ignore[no-untyped-def]
    curves = [curve] * copies + list(others)
    for method in ("greedy", "lagrangian"):
        plan = allocate_batch(curves, per_query * len(curves), method=method, cost=COST, grid=GRID)
        shares = {(q.tokens, q.searches) for q in plan.queries[:copies]}
        assert len(shares) == 1


def test_zero_budget_gives_forced_answer_plans() -> None:
    curves = [SubstitutesCurve(), ComplementsCurve(), SamplingCurve()]
    for method in ("greedy", "heap", "lagrangian"):
        plan = allocate_batch(curves, 0.0, method=method, cost=COST, grid=GRID)
        assert all(q.forced_answer for q in plan.queries)
    single = allocate(SubstitutesCurve(), 0.0, cost=COST, grid=GRID)
    assert single.forced_answer and single.cost == 0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "10"])
def test_bad_budgets_are_refused_at_the_edge(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidBudgetError):
        allocate(SubstitutesCurve(), bad, cost=COST, grid=GRID)
    with pytest.raises(InvalidBudgetError):
        allocate_batch([SubstitutesCurve()], bad, cost=COST, grid=GRID)


class _RaisingCurve:
    family = "broken"

    def value(self, tokens, searches):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    marginal_tokens = marginal_searches = value

    def to_dict(self) -> dict:  # type: ignore[type-arg]
        return {}


def test_a_bad_curve_gets_the_uniform_share_and_the_batch_goes_on(caplog) -> None:  # type: ignore[no-untyped-def]
    nan_curve = SubstitutesCurve(q0=float("nan"))
    curves = [SubstitutesCurve(a=0.9), None, _RaisingCurve(), nan_curve, ComplementsCurve()]
    plan = allocate_batch(curves, 4000.0 * len(curves), cost=COST, grid=GRID)  # type: ignore[arg-type]
    assert [q.fallback for q in plan.queries] == [False, True, True, True, False]
    assert plan.fallbacks == 3
    share = plan.queries[1]
    assert share.cost <= 4000.0 and share.tokens + 500 * share.searches == pytest.approx(4000.0, abs=1)
    assert plan.spent <= 4000.0 * len(curves) + 1e-6
    assert "uniform share" in caplog.text


def test_allocate_respects_price_caps_and_prefers_the_useful_axis() -> None:
    search_only = SubstitutesCurve(a=0.9, tau=math.inf, sigma=2.0)
    plan = allocate(search_only, 4000.0, cost=COST, grid=GRID)
    assert plan.tokens == 0 and plan.searches >= 4
    capped = allocate(search_only, 4000.0, cost=COST, grid=GRID, max_searches=2)
    assert capped.searches == 2
    assert allocate(search_only, 4000.0, cost=COST, grid=GRID, price=1.0).forced_answer
    flat = allocate(ConstantCurve(level=0.4), 4000.0, cost=COST, grid=GRID)
    assert flat.forced_answer and flat.expected_quality == pytest.approx(0.4)


def test_the_batch_moves_budget_to_where_it_pays() -> None:
    easy = SubstitutesCurve(a=1.0, tau=100.0, sigma=0.5)  # saturates almost at once
    hard = SubstitutesCurve(a=1.0, tau=2000.0, sigma=4.0)
    plan = allocate_batch([easy, hard], 2 * 2500.0, cost=COST, grid=GRID)
    assert plan.queries[1].cost > plan.queries[0].cost
    uniform = sum(float(c.value(2500.0, 0)) for c in (easy, hard))
    assert _quality(plan) > uniform
