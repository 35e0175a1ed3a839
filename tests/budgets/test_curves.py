import numpy as np
import pytest

from leadline.budgets.curves import (
    BetaSamplingCurve,
    ComplementsCurve,
    LogLinearCurve,
    MixedCurve,
    SamplingCurve,
    SubstitutesCurve,
    curve_from_dict,
    curve_values,
    values_many,
)
from leadline.budgets.fitting import BucketedCurves, GridMeans, fit_family, select_curve
from leadline.errors import ConfigError

T = np.array([0, 250, 500, 1000, 2000, 4000, 8000], dtype=float)
S = np.array([0, 1, 2, 4, 8], dtype=float)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    tt, ss = np.meshgrid(T, S, indexing="ij")
    return tt.ravel(), ss.ravel()


@pytest.mark.parametrize(
    "curve",
    [
        SubstitutesCurve(q0=0.1, a=0.7, tau=800, sigma=2),
        ComplementsCurve(q0=0.0, a=0.9, tau=500, sigma=3),
        MixedCurve(q0=0.05, a_tokens=0.2, a_searches=0.3, a_both=0.3, tau=600, sigma=2),
        SamplingCurve(a=1.0, p=0.2),
        BetaSamplingCurve(a=0.9, alpha=0.4, beta=0.8),
        LogLinearCurve(q0=0.1, b_tokens=0.05, b_searches=0.1, cap=0.8),
    ],
)
def test_curves_are_monotone_with_non_negative_marginals(curve) -> None:  # type: ignore[no-untyped-def]
    tt, ss = _grid()
    values = curve.value(tt, ss)
    assert np.all((values >= 0) & (values <= 1))
    assert np.all(curve.marginal_tokens(tt, ss) >= -1e-12)
    assert np.all(curve.marginal_searches(tt, ss) >= -1e-12)
    assert curve_from_dict(curve.to_dict()) == curve


def test_saturating_marginals_fall() -> None:
    curve = SubstitutesCurve(q0=0.0, a=1.0, tau=1000, sigma=3)
    assert curve.marginal_tokens(100, 0) > curve.marginal_tokens(3000, 0)
    assert curve.marginal_searches(0, 0) > curve.marginal_searches(0, 5)
    # Complements: a search alone buys nothing until tokens are spent.
    both = ComplementsCurve(q0=0.0, a=1.0, tau=1000, sigma=3)
    assert both.marginal_searches(0, 0) == 0.0
    assert both.marginal_searches(1000, 0) > 0.0


def test_sampling_is_one_minus_miss_to_the_k() -> None:
    curve = SamplingCurve(a=1.0, p=0.3, attempt_tokens=500)
    assert curve.value(1500, 0) == pytest.approx(1 - 0.7**3)


def test_values_many_matches_one_by_one() -> None:
    curves = [
        SubstitutesCurve(a=a, tau=t, sigma=s) for a, t, s in [(0.5, 100, 1), (0.9, 3000, 8), (0.2, 50, 0.5)]
    ]
    stacked = values_many(curves, T[:, None], S[None, :])
    for i, c in enumerate(curves):
        np.testing.assert_allclose(stacked[i], c.value(T[:, None], S[None, :]))
    mixed = curve_values([curves[0], ComplementsCurve()], T[:, None], S[None, :])
    np.testing.assert_allclose(mixed[1], ComplementsCurve().value(T[:, None], S[None, :]))


def test_fit_recovers_a_known_curve() -> None:
    truth = SubstitutesCurve(q0=0.1, a=0.6, tau=700, sigma=2.5)
    tt, ss = _grid()
    curve, mse = fit_family("substitutes", GridMeans.of(tt, ss, truth.value(tt, ss)))
    assert mse < 1e-8
    assert curve.a == pytest.approx(0.6, abs=1e-3)
    assert curve.tau == pytest.approx(700, rel=1e-2)


def test_selection_prefers_the_generating_family_on_held_out_questions() -> None:
    rng = np.random.default_rng(0)
    truth = ComplementsCurve(q0=0.0, a=0.8, tau=600, sigma=2)
    tt, ss = _grid()
    rows_t, rows_s, rows_y, groups = [], [], [], []
    for q in range(60):
        y = (rng.random(len(tt)) < truth.value(tt, ss)).astype(float)
        rows_t += list(tt)
        rows_s += list(ss)
        rows_y += list(y)
        groups += [q] * len(tt)
    fit = select_curve(rows_t, rows_s, rows_y, groups, families=("substitutes", "complements", "log_linear"))
    assert fit.family == "complements"
    assert fit.heldout_mse["complements"] < fit.heldout_mse["substitutes"]


def test_too_few_points_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="too few budget points"):
        fit_family("mixed", GridMeans.of([0, 100], [0, 1], [0.1, 0.2]))
    with pytest.raises(ConfigError, match="too few budget points"):
        select_curve([0, 100], [0, 1], [0.1, 0.2], [1, 2])
    with pytest.raises(ConfigError):
        GridMeans.of([0, 1], [0, 1], [0.1, float("nan")])


def test_bucketed_curves_fall_back_to_the_pooled_curve_and_round_trip() -> None:
    rng = np.random.default_rng(1)
    tt, ss = _grid()
    easy, hard = SubstitutesCurve(a=0.9, tau=300, sigma=1), SubstitutesCurve(a=0.4, tau=3000, sigma=6)
    keys, t_all, s_all, y_all, g_all = [], [], [], [], []
    for q in range(40):
        curve, key = (easy, "easy") if q % 2 else (hard, "hard")
        y = np.clip(curve.value(tt, ss) + rng.normal(0, 0.02, len(tt)), 0, 1)
        keys += [key] * len(tt)
        t_all += list(tt)
        s_all += list(ss)
        y_all += list(y)
        g_all += [q] * len(tt)
    model = BucketedCurves.fit(keys, t_all, s_all, y_all, g_all, families=("substitutes", "log_linear"))
    assert model.curve_for("easy").value(1000, 2) > model.curve_for("hard").value(1000, 2) + 0.2
    assert model.curve_for("unknown") == model.default
    again = BucketedCurves.from_dict(model.to_dict())
    assert again.curve_for("easy") == model.curve_for("easy")
