import numpy as np
import pytest

from leadline.budgets.conditioned import ConditionedCurves, fit_conditioned
from leadline.budgets.curves import SubstitutesCurve
from leadline.errors import ConfigError

T = np.array([0, 250, 500, 1000, 2000, 4000], dtype=float)
S = np.array([0, 1, 2, 4, 8], dtype=float)


def _rows(n_queries: int, seed: int) -> tuple[np.ndarray, ...]:
    """Each query's token scale grows with its (observed) feature: log τ = log 800 + 0.8·x."""
    rng = np.random.default_rng(seed)
    tt, ss = (a.ravel() for a in np.meshgrid(T, S, indexing="ij"))
    feats, ts, ss_, ys, gs = [], [], [], [], []
    for q in range(n_queries):
        x = rng.normal()
        curve = SubstitutesCurve(a=0.8, tau=800.0 * np.exp(0.8 * x), sigma=3.0)
        y = np.clip(curve.value(tt, ss) + rng.normal(0, 0.03, len(tt)), 0, 1)
        feats += [[x]] * len(tt)
        ts += list(tt)
        ss_ += list(ss)
        ys += list(y)
        gs += [q] * len(tt)
    return np.array(feats), np.array(ts), np.array(ss_), np.array(ys), np.array(gs)


def test_conditioning_recovers_how_the_scale_moves_with_the_feature() -> None:
    x, t, s, y, g = _rows(60, 0)
    model = fit_conditioned(x, t, s, y, g, families=("substitutes",))
    assert model.family == "substitutes"
    assert model.heldout_mse < model.pooled_heldout_mse
    slow, fast = model.curves_for([[1.5], [-1.5]])
    assert slow.tau > 2 * fast.tau  # a larger feature means a slower token curve
    again = ConditionedCurves.from_dict(model.to_dict())
    assert again.curve_for([0.3]) == model.curve_for([0.3])


def test_an_uninformative_feature_is_dropped() -> None:
    x, t, s, y, g = _rows(40, 1)
    noise = np.random.default_rng(2).normal(size=(40, 1))
    x_noise = np.repeat(noise, len(x) // 40, axis=0)
    model = fit_conditioned(x_noise, t, s, y, g, families=("substitutes",))
    a, b = model.curves_for([[2.0], [-2.0]])
    assert a.tau == pytest.approx(b.tau, rel=0.5)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError):
        fit_conditioned([[0.0]], [0.0, 1.0], [0.0], [0.1], [1])
    with pytest.raises(ConfigError):
        fit_conditioned([[float("nan")]], [0.0], [0.0], [0.1], [1])
