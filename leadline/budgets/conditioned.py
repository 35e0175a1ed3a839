"""Gain curves as functions of difficulty: a family whose parameters move with the query's features.

Bucketing by difficulty throws away what lies inside a bucket and splits the outcomes thin. Here one
family is fitted to all outcomes of a group at once, with its scale parameters (``log τ``, ``log σ``,
``logit p``, ``log α``, ``log β``) linear in standardized features (a difficulty score, observables):
``θ(x) = θ₀ + B·x``. The family is the one chosen by held-out error for the pooled outcomes
(:func:`~leadline.budgets.curves.select_curve`); conditioning is kept only when it lowers the held-out
error on questions the fit did not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from leadline.budgets.curves import FAMILIES, ParametricCurve
from leadline.budgets.fitting import GridMeans, fit_family, select_curve
from leadline.errors import ConfigError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ConditionedCurves:
    """A family with ``θ(x) = θ₀ + B·x`` over standardized features; ``curve_for(x)`` gives a curve."""

    family: str
    base: tuple[float, ...]
    slopes: tuple[tuple[float, ...], ...]
    """One row per fitted parameter, one column per feature (zero rows for unconditioned parameters)."""
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    fixed: Mapping[str, float] = field(default_factory=dict)
    heldout_mse: float = float("nan")
    pooled_heldout_mse: float = float("nan")

    def _theta(self, x: FloatArray) -> FloatArray:
        z = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - np.asarray(self.mean)) / np.asarray(self.scale)
        theta = np.asarray(self.base)[None, :] + z @ np.asarray(self.slopes).T
        lower, upper = FAMILIES[self.family]._bounds()
        return cast(FloatArray, np.clip(theta, lower, upper))

    def curves_for(self, features: Any) -> list[ParametricCurve]:
        """One curve per row of ``features`` (n, k)."""
        kind = FAMILIES[self.family]
        params = kind._params_from(self._theta(features), self.fixed)
        n = len(np.atleast_2d(np.asarray(features)))
        arrays = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for k, v in params.items()}
        return [kind(**{k: float(v[i]) for k, v in arrays.items()}) for i in range(n)]

    def curve_for(self, features: Sequence[float]) -> ParametricCurve:
        """The curve for one question's feature row."""
        return self.curves_for([list(features)])[0]

    def to_dict(self) -> dict[str, Any]:
        """The family, base parameters and feature slopes as JSON-ready data."""
        return {
            "family": self.family,
            "base": list(self.base),
            "slopes": [list(r) for r in self.slopes],
            "mean": list(self.mean),
            "scale": list(self.scale),
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConditionedCurves:
        """Rebuild from :meth:`to_dict` data; a ConfigError for an unknown family."""
        if data.get("family") not in FAMILIES:
            raise ConfigError(f"unknown gain-curve family {data.get('family')!r}")
        return cls(
            family=str(data["family"]),
            base=tuple(data["base"]),
            slopes=tuple(tuple(r) for r in data["slopes"]),
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            fixed=dict(data.get("fixed", {})),
        )


def _scale_params(family: str) -> list[int]:
    return [i for i, name in enumerate(FAMILIES[family].FITTED) if name.startswith(("log_", "logit_"))]


def _fit_once(
    family: str,
    start: ParametricCurve,
    z: FloatArray,
    t: FloatArray,
    s: FloatArray,
    y: FloatArray,
    fixed: Mapping[str, float],
    l2: float,
) -> tuple[FloatArray, FloatArray]:
    kind = FAMILIES[family]
    names = kind.FITTED
    cond = _scale_params(family)
    p, k, c = len(names), z.shape[1], len(cond)
    lower, upper = kind._bounds()
    theta0 = _vector_of(start)
    x0 = np.concatenate([np.clip(theta0, lower, upper), np.zeros(c * k)])
    lo = np.concatenate([lower, np.full(c * k, -10.0)])
    hi = np.concatenate([upper, np.full(c * k, 10.0)])
    ridge = np.sqrt(l2 * len(y))

    def residual(v: FloatArray) -> FloatArray:
        theta = np.broadcast_to(v[:p], (len(y), p)).copy()
        slopes = v[p:].reshape(c, k)
        theta[:, cond] += z @ slopes.T
        theta = np.clip(theta, lower, upper)
        q = np.clip(kind._evaluate(kind._params_from(theta, fixed), t, s), 0.0, 1.0)
        return cast(FloatArray, np.concatenate([q - y, ridge * v[p:]]) / np.sqrt(len(y)))

    result = least_squares(residual, x0, bounds=(lo, hi), method="trf", max_nfev=200)
    slopes_full = np.zeros((p, k))
    slopes_full[cond] = result.x[p:].reshape(c, k)
    return result.x[:p], slopes_full


def _mse(model: ConditionedCurves, x: FloatArray, t: FloatArray, s: FloatArray, y: FloatArray) -> float:
    kind = FAMILIES[model.family]
    q = kind._evaluate(kind._params_from(model._theta(x), model.fixed), t, s)
    return float(np.mean((np.clip(q, 0.0, 1.0) - y) ** 2))


def fit_conditioned(
    features: Any,
    tokens: Any,
    searches: Any,
    quality: Any,
    groups: Any,
    *,
    families: Sequence[str] | None = None,
    fixed: Mapping[str, float] | None = None,
    l2: float = 1e-4,
    holdout: float = 0.3,
    seed: int = 0,
) -> ConditionedCurves:
    """Fit a conditioned curve to outcome rows (``features`` is (rows, k)); keep it only if it generalizes."""
    x = np.atleast_2d(np.asarray(features, dtype=np.float64))
    t = np.asarray(tokens, dtype=np.float64)
    s = np.asarray(searches, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    g = np.asarray(groups)
    if not (len(x) == len(t) == len(s) == len(y) == len(g)):
        raise ConfigError("features, tokens, searches, quality and groups must have one length")
    if not np.all(np.isfinite(x)):
        raise ConfigError("features must be finite numbers")
    fixed = dict(fixed or {})
    pooled = (
        select_curve(t, s, y, g, families=tuple(families), fixed=fixed)
        if families
        else select_curve(t, s, y, g, fixed=fixed)
    )
    family = pooled.family
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    z = (x - mean) / scale
    rng = np.random.default_rng(seed)
    unique = np.unique(g)
    held_groups = set(rng.choice(unique, size=max(1, int(len(unique) * holdout)), replace=False).tolist())
    held = np.array([v in held_groups for v in g.tolist()])

    def model_of(base: FloatArray, slopes: FloatArray) -> ConditionedCurves:
        return ConditionedCurves(
            family=family,
            base=tuple(float(v) for v in base),
            slopes=tuple(tuple(float(v) for v in row) for row in slopes),
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            fixed=fixed,
        )

    pooled_model = model_of(_vector_of(pooled.curve), np.zeros((len(FAMILIES[family].FITTED), x.shape[1])))
    if held.all() or not held.any() or not _scale_params(family):
        return pooled_model
    train = ~held
    start, _ = fit_family(family, GridMeans.of(t[train], s[train], y[train]), fixed=fixed)
    base, slopes = _fit_once(family, start, z[train], t[train], s[train], y[train], fixed, l2)
    trial = model_of(base, slopes)
    pooled_err = _mse(model_of(_vector_of(start), np.zeros_like(slopes)), x[held], t[held], s[held], y[held])
    cond_err = _mse(trial, x[held], t[held], s[held], y[held])
    if cond_err >= pooled_err:
        return replace(pooled_model, heldout_mse=pooled_err, pooled_heldout_mse=pooled_err)
    base, slopes = _fit_once(family, pooled.curve, z, t, s, y, fixed, l2)
    final = model_of(base, slopes)
    return replace(final, heldout_mse=cond_err, pooled_heldout_mse=pooled_err)


def _vector_of(curve: ParametricCurve) -> FloatArray:
    out = []
    for name in curve.FITTED:
        if name.startswith("log_"):
            out.append(np.log(getattr(curve, name[4:])))
        elif name.startswith("logit_"):
            p = min(max(getattr(curve, name[6:]), 1e-9), 1 - 1e-9)
            out.append(np.log(p / (1 - p)))
        else:
            out.append(getattr(curve, name))
    return np.asarray(out, dtype=np.float64)


__all__ = ["ConditionedCurves", "fit_conditioned"]
