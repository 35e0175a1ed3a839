"""The runtime controller's dynamic programme: exact on small cases, at least the look-ahead, sensible."""

from __future__ import annotations

import time
from functools import cache

import numpy as np
import pytest

from leadline.budgets.runtime import (
    SEARCH,
    STOP,
    THINK,
    RuntimeModel,
    RuntimePolicy,
    kind_prior_from_report,
    lognormal_curve,
)
from leadline.budgets.runtime_dp import DPHorizon, repaid_depth
from leadline.errors import ConfigError

MODEL = RuntimeModel.default()


def _curves(s_cap: int, c_cap: int, sigma: float = 3.0, tau: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    gs = lognormal_curve(np.array([np.log(sigma)]), 0.5, s_cap)
    gt = lognormal_curve(np.array([np.log(tau)]), 0.5, c_cap)
    return gs, gt


def _brute(kind: int, gs: np.ndarray, gt: np.ndarray, price: float, cost: float = 500.0) -> float:
    """The optimal value by plain recursion on the belief (the model's own posterior at every state)."""
    kp = kind_prior_from_report([kind])
    s_cap, c_cap = gs.shape[1] - 1, gt.shape[1] - 1
    a = MODEL.grid
    ps, pt = MODEL.search_signal.prob(a), MODEL.think_signal.prob(a)

    @cache
    def value(s: int, hs: int, c: int, hc: int) -> float:
        w = MODEL.posterior(kp, np.array([s]), np.array([hs]), np.array([c]), np.array([hc]))[0]
        m = (w * a).sum(axis=1)
        best = m[0] * gs[0, s] + m[1] * gt[0, c] + m[2] * gs[0, s] * gt[0, c]
        if s < s_cap:
            p = float((w * ps).sum())
            go = p * value(s + 1, hs + 1, c, hc) + (1 - p) * value(s + 1, hs, c, hc) - price * cost
            best = max(best, go)
        if c < c_cap:
            p = float((w * pt).sum())
            go = p * value(s, hs, c + 1, hc + 1) + (1 - p) * value(s, hs, c + 1, hc) - price * cost
            best = max(best, go)
        return float(best)

    return value(0, 0, 0, 0)


def _decide(
    policy: RuntimePolicy,
    kind: int,
    gs: np.ndarray,
    gt: np.ndarray,
    price: float,
    counts: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> tuple[int, float, float, float]:
    d = policy.decide(
        kind_prior=kind_prior_from_report([kind]),
        gs=gs,
        gt=gt,
        searches=np.array([counts[0]]),
        search_hits=np.array([counts[1]]),
        thinks=np.array([counts[2]]),
        think_hits=np.array([counts[3]]),
        price=price,
    )
    return int(d.action[0]), float(d.stop_value[0]), float(d.search_value[0]), float(d.think_value[0])


@pytest.mark.parametrize(("kind", "price"), [(0, 2e-5), (1, 4e-5), (2, 1e-5), (2, 2e-4)])
def test_the_programme_equals_brute_force_enumeration_on_a_tiny_horizon(kind: int, price: float) -> None:
    gs, gt = _curves(3, 4)
    policy = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(3, 4, 7))
    _, stop, search, think = _decide(policy, kind, gs, gt, price)
    assert max(stop, search, think) == pytest.approx(_brute(kind, gs, gt, price), abs=1e-10)


def test_the_horizon_bounds_the_programme_but_never_the_caps_it_does_not_reach() -> None:
    gs, gt = _curves(3, 4)
    full = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(3, 4, 7))
    # a horizon past the caps: the caps bind first, same value; a shorter one sees less, never more value
    wide = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(10, 10, 20))
    short = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(1, 1, 2))
    v_full = max(_decide(full, 2, gs, gt, 1e-5)[1:])
    assert max(_decide(wide, 2, gs, gt, 1e-5)[1:]) == pytest.approx(v_full, abs=1e-12)
    assert max(_decide(short, 2, gs, gt, 1e-5)[1:]) <= v_full + 1e-12


def test_the_programme_is_worth_at_least_the_block_look_ahead_and_the_myopic_bundle() -> None:
    gs, gt = _curves(6, 8)
    dp = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(6, 8, 14))
    ahead = RuntimePolicy(MODEL, rule="lookahead", blocks=(1, 3))
    for kind in (0, 1, 2):
        for price in (5e-6, 3e-5, 1e-4):
            for counts in ((0, 0, 0, 0), (2, 1, 1, 0), (3, 0, 2, 2)):
                v_dp = max(_decide(dp, kind, gs, gt, price, counts)[1:])
                v_ahead = max(_decide(ahead, kind, gs, gt, price, counts)[1:])
                my = ahead.decide(
                    kind_prior=kind_prior_from_report([kind]),
                    gs=gs,
                    gt=gt,
                    searches=np.array([counts[0]]),
                    search_hits=np.array([counts[1]]),
                    thinks=np.array([counts[2]]),
                    think_hits=np.array([counts[3]]),
                    price=price,
                    lookahead=False,
                )
                v_my = max(float(my.stop_value[0]), float(my.search_value[0]), float(my.think_value[0]))
                assert v_dp >= v_ahead - 1e-12 and v_dp >= v_my - 1e-12


def test_a_settled_belief_stops_and_an_open_one_continues() -> None:
    gs, gt = _curves(32, 64)
    policy = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(12, 16, 24))
    # an open belief at a modest price: a step is worth its cost
    assert all(_decide(policy, k, gs, gt, 2e-5)[0] in (SEARCH, THINK) for k in (0, 1, 2))
    # eight searches, no relevant hit: the amplitude is almost surely tiny, answer now
    assert _decide(policy, 0, gs, gt, 2e-5, (8, 0, 0, 0))[0] == STOP
    # the same query with eight hits goes on
    assert _decide(policy, 0, gs, gt, 2e-5, (8, 8, 0, 0))[0] == SEARCH
    # flat curves (a settled answer): nothing to gain, at any positive price
    flat_s, flat_t = np.full_like(gs, gs[0, 4]), np.full_like(gt, gt[0, 2])
    assert _decide(policy, 2, flat_s, flat_t, 1e-7, (4, 4, 2, 2))[0] == STOP
    # nothing is worth a price that high
    assert _decide(policy, 2, gs, gt, 1.0)[0] == STOP


def test_the_plan_is_consistent_with_deciding_again_where_the_run_stands() -> None:
    gs, gt = _curves(5, 6)
    policy = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(5, 6, 11))
    kp = kind_prior_from_report([2])
    zero = np.zeros(1, dtype=np.int64)
    plan = policy.plan(kp, gs, gt, zero, zero, zero, zero, 1.5e-5)
    for s, hs, c, hc in ((1, 1, 0, 0), (2, 0, 1, 1), (3, 3, 2, 1), (0, 0, 4, 3)):
        at = (np.array([s]), np.array([hs]), np.array([c]), np.array([hc]))
        here = policy.plan(kp, gs, gt, *at, 1.5e-5)
        ahead = int(plan.action(np.array([0]), *at)[0])
        # the step the plan takes there is optimal there (searching and thinking first can tie exactly)
        chosen = (here.stop_value, here.search_value, here.think_value)[ahead][0]
        assert chosen == pytest.approx(here.value[0], abs=1e-12)


def test_a_batch_plan_groups_runs_that_share_a_belief_and_keeps_their_order() -> None:
    gs = np.vstack([_curves(8, 8, sigma=s)[0] for s in (1.0, 3.0, 9.0, 3.0)])
    gt = np.vstack([_curves(8, 8, tau=t)[1] for t in (9.0, 3.0, 1.0, 3.0)])
    kp = kind_prior_from_report([0, 1, 2, 1])
    zero = np.zeros(4, dtype=np.int64)
    policy = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(8, 8, 16))
    batch = policy.plan(kp, gs, gt, zero, zero, zero, zero, 2e-5)
    for i in range(4):
        z = np.zeros(1, dtype=np.int64)
        one = policy.plan(kp[i : i + 1], gs[i : i + 1], gt[i : i + 1], z, z, z, z, 2e-5)
        for v in ("stop_value", "search_value", "think_value"):
            assert getattr(one, v)[0] == pytest.approx(getattr(batch, v)[i], abs=1e-12)
    assert batch.value[1] == batch.value[3]  # identical runs, identical plans


def test_one_decision_in_the_loop_is_fast() -> None:
    gs, gt = _curves(12, 24)
    policy = RuntimePolicy(MODEL, rule="dp")
    _decide(policy, 2, gs, gt, 2e-5)  # warm up
    started = time.perf_counter()
    for i in range(5):
        _decide(policy, 2, gs, gt, 2e-5, (i, i // 2, i, 0))  # a new belief each time: no cached tables
    assert (time.perf_counter() - started) / 5 < 0.5  # generous for a loaded CI machine; see docs


def test_a_negative_horizon_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        DPHorizon(-1, 4, 4)


def test_the_depth_a_run_can_repay_rounds_up_and_respects_the_limit() -> None:
    curve = np.array([[0.0, 0.5, 0.7, 0.8, 0.81]])  # increments 0.5, 0.2, 0.1, 0.01
    assert int(repaid_depth(curve, np.array([0.05]), limit=32)[0]) == 8  # 3 paying steps + 4 -> 8
    assert int(repaid_depth(curve, np.array([0.05]), limit=6)[0]) == 6
    assert int(repaid_depth(curve, np.array([1.0]), limit=32)[0]) == 4  # none pays: the margin only


def test_pruning_to_the_repaid_depth_loses_nothing_on_ordinary_runs() -> None:
    gs, gt = _curves(16, 24)
    full = RuntimePolicy(MODEL, rule="dp", prune=False, horizon=DPHorizon(16, 24, 40))
    pruned = RuntimePolicy(MODEL, rule="dp", horizon=DPHorizon(16, 24, 40))
    for kind in (0, 1, 2):
        for price in (1e-5, 5e-5):
            v_full = max(_decide(full, kind, gs, gt, price)[1:])
            v_pruned = max(_decide(pruned, kind, gs, gt, price)[1:])
            assert v_full - 1e-3 <= v_pruned <= v_full + 1e-9
