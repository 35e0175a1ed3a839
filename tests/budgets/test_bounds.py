"""The dual upper bound holds against every plan, found by brute force (leadline/budgets/bounds.py)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.budgets.bounds import dual_upper_bound
from leadline.errors import InvalidBudgetError


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4),
    g=st.integers(2, 4),
    fraction=st.floats(0.0, 1.0),
)
def test_no_plan_beats_the_bound(seed: int, n: int, g: int, fraction: float) -> None:
    rng = np.random.default_rng(seed)
    values = rng.random((n, g))  # any values: not concave, not even monotone
    costs = np.concatenate([[0.0], np.sort(rng.random(g - 1) * 10)])
    budget = fraction * float(costs.max())
    bound = dual_upper_bound(values, costs, budget)
    best = max(
        values[np.arange(n), list(plan)].mean()
        for plan in itertools.product(range(g), repeat=n)
        if costs[list(plan)].mean() <= budget + 1e-12
    )
    assert best <= bound + 1e-9


def test_with_room_for_everything_the_bound_is_each_querys_best() -> None:
    values = np.array([[0.1, 0.5, 0.4], [0.0, 0.2, 0.9]])
    costs = np.array([0.0, 1.0, 2.0])
    assert dual_upper_bound(values, costs, 2.0) == pytest.approx(0.7)


def test_concave_rows_make_the_bound_tight() -> None:
    # One query per row, concave in cost, many queries: greedy by slope reaches the bound.
    costs = np.arange(6, dtype=np.float64)
    values = np.tile(1.0 - np.exp(-costs / 2.0), (100, 1))
    assert dual_upper_bound(values, costs, 2.0) == pytest.approx(values[0, 2], abs=1e-6)


def test_bad_shapes_and_budgets_are_errors() -> None:
    with pytest.raises(ValueError, match="values must be"):
        dual_upper_bound(np.zeros(3), np.zeros(3), 1.0)
    with pytest.raises(InvalidBudgetError):
        dual_upper_bound(np.zeros((2, 2)), np.array([1.0, 2.0]), 0.5)
