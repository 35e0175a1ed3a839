"""The allocation's round trip through the loop's checkpointed state, with its defaults in one place."""

from __future__ import annotations

import json

from leadline.budgets.controller import Allocation
from leadline.budgets.ledger import Budget


def test_an_allocation_survives_the_json_state() -> None:
    alloc = Allocation(tokens=300, searches=2, shape="parallel", samples=3, difficulty=0.7, think_tokens=96)
    state = json.loads(json.dumps(alloc.to_state()))  # what a checkpoint stores
    assert Allocation.from_state(state, Budget()) == alloc


def test_before_assess_the_allocation_is_the_budget() -> None:
    alloc = Allocation.from_state(None, Budget(tokens=500, searches=3))
    assert (alloc.tokens, alloc.searches, alloc.shape, alloc.samples, alloc.think_tokens) == (
        500,
        3,
        "sequential",
        1,
        128,
    )


def test_an_older_state_takes_the_defaults_and_unknown_keys_are_ignored() -> None:
    alloc = Allocation.from_state({"tokens": 64, "retired_field": 1}, Budget(tokens=500, searches=3))
    assert (alloc.tokens, alloc.searches, alloc.think_tokens) == (64, 3, 128)
