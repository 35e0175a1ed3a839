"""The runtime belief (exact on a grid) and the look-ahead stop/continue rule."""

from __future__ import annotations

import numpy as np
import pytest

from leadline.budgets.runtime import (
    SEARCH,
    STOP,
    THINK,
    RuntimeModel,
    RuntimePolicy,
    SignalModel,
    kind_prior_from_report,
    lognormal_curve,
)
from leadline.errors import ConfigError

MODEL = RuntimeModel.default()


def test_the_amplitude_grid_keeps_the_prior_mean() -> None:
    a, w = MODEL.grid, np.asarray(MODEL.amplitude_weights)
    assert abs(float((a * w).sum()) - 0.35 / 0.95) < 0.01 and abs(float(w.sum()) - 1.0) < 1e-9


def test_the_posterior_is_bayes_rule_on_the_grid() -> None:
    kp = kind_prior_from_report([0])
    w = MODEL.posterior(kp, np.array([3]), np.array([1]), np.array([2]), np.array([2]))
    # brute force: prior × likelihood of each signal, normalised
    a = MODEL.grid
    ps, pt = MODEL.search_signal.prob(a), MODEL.think_signal.prob(a)
    brute = kp[0][:, None] * np.asarray(MODEL.amplitude_weights)[None, :] * ps * (1 - ps) ** 2 * pt**2
    brute /= brute.sum()
    assert np.allclose(w[0], brute, atol=1e-12)


def test_hits_raise_the_amplitude_and_misses_lower_it() -> None:
    kp = kind_prior_from_report([0, 0, 0])
    w = MODEL.posterior(kp, np.array([0, 4, 4]), np.array([0, 4, 0]), np.zeros(3, int), np.zeros(3, int))
    m = MODEL.expected_amplitude(w).sum(axis=1)
    assert m[1] > m[0] > m[2]


def _decide(hits: int, searches: int, price: float, lookahead: bool = True) -> tuple[int, float, float]:
    gs = lognormal_curve(np.array([np.log(3.0)]), 0.5, 32)
    gt = lognormal_curve(np.array([np.log(3.0)]), 0.5, 64)
    d = RuntimePolicy(MODEL, rule="lookahead").decide(
        kind_prior=kind_prior_from_report([0]),
        gs=gs,
        gt=gt,
        searches=np.array([searches]),
        search_hits=np.array([hits]),
        thinks=np.array([0]),
        think_hits=np.array([0]),
        price=price,
        lookahead=lookahead,
    )
    return int(d.action[0]), float(d.search_value[0]), float(d.stop_value[0])


def test_a_search_kind_query_searches_while_it_pays_and_stops_when_it_does_not() -> None:
    assert _decide(0, 0, 1e-5)[0] == SEARCH
    assert _decide(0, 0, 1.0)[0] == STOP  # nothing is worth a price that high
    # after four searches with no relevant hit the amplitude is likely tiny: it stops at a price where a
    # query with four hits goes on
    assert _decide(0, 4, 6e-5)[0] == STOP
    assert _decide(4, 4, 6e-5)[0] == SEARCH


def test_information_has_value_the_look_ahead_is_worth_at_least_the_myopic_bundle() -> None:
    for hits, searches in ((0, 0), (1, 2), (0, 3)):
        _, ahead, _ = _decide(hits, searches, 5e-5, lookahead=True)
        _, myopic, _ = _decide(hits, searches, 5e-5, lookahead=False)
        assert ahead >= myopic - 1e-3


def test_a_full_cap_cannot_be_stepped_past() -> None:
    gs = lognormal_curve(np.array([np.log(3.0)]), 0.5, 2)
    gt = lognormal_curve(np.array([np.log(3.0)]), 0.5, 2)
    d = RuntimePolicy(MODEL).decide(
        kind_prior=kind_prior_from_report([2]),
        gs=gs,
        gt=gt,
        searches=np.array([2]),
        search_hits=np.array([2]),
        thinks=np.array([2]),
        think_hits=np.array([2]),
        price=0.0,
    )
    assert int(d.action[0]) == STOP and d.search_value[0] == -np.inf and d.think_value[0] == -np.inf
    assert "answer now" in d.reason(0)
    assert THINK != SEARCH


def test_a_model_round_trips_and_bad_ones_are_config_errors() -> None:
    again = RuntimeModel.from_dict(MODEL.to_dict())
    assert again == MODEL
    with pytest.raises(ConfigError):
        RuntimeModel.from_dict({"amplitudes": [0.5]})
    with pytest.raises(ConfigError):
        RuntimeModel(
            amplitudes=(0.5,),
            amplitude_weights=(1.0, 2.0),
            search_signal=MODEL.search_signal,
            think_signal=MODEL.think_signal,
        )
    with pytest.raises(ConfigError):
        SignalModel.from_dict({"base": [0.1], "slope": [0.2]})
    with pytest.raises(ConfigError):
        RuntimeModel.beta_prior(0.0, 1.0, search_signal=MODEL.search_signal, think_signal=MODEL.think_signal)
