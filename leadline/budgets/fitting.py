"""Fitting gain curves to outcome tables, and choosing the family by held-out error.

Outcomes are aggregated per budget point (mean and count) and each family is fitted with
``scipy.optimize.least_squares`` from several starts. :func:`select_curve` compares families on folds
split *by question*, so a family is judged on questions it did not see; :class:`BucketedCurves` keeps one
selected curve per bucket (difficulty bin, question type) with a pooled default.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from scipy.optimize import least_squares

from leadline.budgets.curves import DEFAULT_FAMILIES, FAMILIES, FloatArray, ParametricCurve, curve_from_dict
from leadline.errors import ConfigError


@dataclass(frozen=True)
class GridMeans:
    """Outcomes aggregated per budget point: mean quality and row count at each (T, S)."""

    tokens: FloatArray
    searches: FloatArray
    mean: FloatArray
    count: FloatArray

    @classmethod
    def of(cls, tokens: Any, searches: Any, quality: Any) -> GridMeans:
        """Mean quality per distinct (tokens, searches) point, with the count behind each mean."""
        t = np.asarray(tokens, dtype=np.float64)
        s = np.asarray(searches, dtype=np.float64)
        y = np.asarray(quality, dtype=np.float64)
        if not (t.shape == s.shape == y.shape) or t.ndim != 1:
            raise ConfigError("tokens, searches and quality must be 1-D arrays of one length")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(s)) and np.all(np.isfinite(y))):
            raise ConfigError("outcomes must be finite numbers")
        pairs, inverse = np.unique(np.stack([t, s], axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        count = np.bincount(inverse, minlength=len(pairs)).astype(np.float64)
        mean = np.bincount(inverse, weights=y, minlength=len(pairs)) / np.maximum(count, 1.0)
        return cls(pairs[:, 0], pairs[:, 1], mean, count)

    @property
    def points(self) -> int:
        """How many distinct budget points there are."""
        return len(self.mean)


def fit_family(
    family: str, means: GridMeans, *, fixed: Mapping[str, float] | None = None
) -> tuple[ParametricCurve, float]:
    """Least-squares fit of one family to grid means (weighted by counts). Returns the curve and its MSE."""
    if family not in DEFAULT_FAMILIES:
        raise ConfigError(f"unknown gain-curve family {family!r}; known: {list(DEFAULT_FAMILIES)}")
    kind = FAMILIES[family]
    n_params = len(kind.FITTED)
    if means.points < n_params + 1:
        raise ConfigError(
            f"too few budget points to fit a {family} curve: {means.points} distinct (T, S) points, "
            f"need at least {n_params + 1}"
        )
    fixed = dict(fixed or {})
    weights = np.sqrt(means.count / means.count.sum())
    lower, upper = kind._bounds()

    def residual(x: FloatArray) -> FloatArray:
        curve = kind._from_vector(list(x), fixed)
        return cast(FloatArray, weights * (curve.value(means.tokens, means.searches) - means.mean))

    best: tuple[float, ParametricCurve] | None = None
    for start in kind._starts(means.tokens, means.searches, means.mean):
        x0 = np.clip(np.asarray(start, dtype=np.float64), lower, upper)
        result = least_squares(residual, x0, bounds=(lower, upper), method="trf", max_nfev=400)
        curve = kind._from_vector(list(result.x), fixed)
        cost = float(np.sum(result.fun**2))
        if best is None or cost < best[0]:
            best = (cost, curve)
    assert best is not None
    return best[1], best[0]


@dataclass(frozen=True)
class CurveFit:
    """The chosen curve of one group of outcomes, with the held-out error of every family tried."""

    curve: ParametricCurve
    heldout_mse: dict[str, float] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """The fitted curve's family."""
        return self.curve.FAMILY


def select_curve(
    tokens: Any,
    searches: Any,
    quality: Any,
    groups: Any,
    *,
    families: Sequence[str] = DEFAULT_FAMILIES,
    folds: int = 4,
    seed: int = 0,
    fixed: Mapping[str, float] | None = None,
) -> CurveFit:
    """Choose the family with the lowest held-out error (folds split by ``groups``, i.e. by question)."""
    t = np.asarray(tokens, dtype=np.float64)
    s = np.asarray(searches, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    g = np.asarray(groups)
    if not (len(t) == len(s) == len(y) == len(g)):
        raise ConfigError("tokens, searches, quality and groups must have one length")
    full = GridMeans.of(t, s, y)
    usable = [f for f in families if full.points >= len(FAMILIES[f].FITTED) + 1]
    if not usable:
        raise ConfigError(
            f"too few budget points to fit any gain curve: {full.points} distinct (T, S) points"
        )
    unique_groups = np.unique(g)
    rng = np.random.default_rng(seed)
    fold_of_group = dict(
        zip(unique_groups.tolist(), rng.permutation(len(unique_groups)) % folds, strict=True)
    )
    fold = np.array([fold_of_group[x] for x in g.tolist()])
    errors: dict[str, float] = {}
    n_folds = min(folds, len(unique_groups))
    for family in usable:
        if n_folds < 2:
            errors[family] = fit_family(family, full, fixed=fixed)[1]
            continue
        total, weight = 0.0, 0.0
        for k in range(n_folds):
            train, test = fold != k, fold == k
            if not train.any() or not test.any():
                continue
            train_means = GridMeans.of(t[train], s[train], y[train])
            if train_means.points < len(FAMILIES[family].FITTED) + 1:
                continue
            curve, _ = fit_family(family, train_means, fixed=fixed)
            held = GridMeans.of(t[test], s[test], y[test])
            err = held.count * (curve.value(held.tokens, held.searches) - held.mean) ** 2
            total += float(err.sum())
            weight += float(held.count.sum())
        errors[family] = total / weight if weight else math.inf
    best = min(errors, key=lambda f: errors[f])
    curve, _ = fit_family(best, full, fixed=fixed)
    return CurveFit(curve=curve, heldout_mse=errors)


@dataclass(frozen=True)
class BucketedCurves:
    """One fitted curve per bucket (difficulty bin, question type, ...) and a pooled default."""

    curves: Mapping[Hashable, ParametricCurve]
    default: ParametricCurve
    families: Mapping[Hashable, str] = field(default_factory=dict)

    def curve_for(self, key: Hashable) -> ParametricCurve:
        """The curve of bucket ``key``, or the pooled default."""
        return self.curves.get(key, self.default)

    @classmethod
    def fit(
        cls,
        keys: Sequence[Hashable],
        tokens: Any,
        searches: Any,
        quality: Any,
        groups: Any,
        *,
        families: Sequence[str] = DEFAULT_FAMILIES,
        min_groups: int = 8,
        folds: int = 4,
        seed: int = 0,
        fixed: Mapping[str, float] | None = None,
    ) -> BucketedCurves:
        """Fit the pooled curve, then one per bucket with at least ``min_groups`` questions."""
        t = np.asarray(tokens, dtype=np.float64)
        s = np.asarray(searches, dtype=np.float64)
        y = np.asarray(quality, dtype=np.float64)
        g = np.asarray(groups)
        key_list = list(keys)
        default = select_curve(t, s, y, g, families=families, folds=folds, seed=seed, fixed=fixed).curve
        index: dict[Hashable, list[int]] = {}
        for i, key in enumerate(key_list):
            index.setdefault(key, []).append(i)
        curves: dict[Hashable, ParametricCurve] = {}
        chosen: dict[Hashable, str] = {}
        for key, rows in index.items():
            idx = np.asarray(rows)
            if len(np.unique(g[idx])) < min_groups:
                continue
            try:
                fit = select_curve(
                    t[idx], s[idx], y[idx], g[idx], families=families, folds=folds, seed=seed, fixed=fixed
                )
            except ConfigError:
                continue
            curves[key] = fit.curve
            chosen[key] = fit.family
        return cls(curves=curves, default=default, families=chosen)

    def to_dict(self) -> dict[str, Any]:
        """The default and per-bucket curves as JSON-ready data."""
        return {
            "default": self.default.to_dict(),
            "buckets": [[_key_to_json(k), c.to_dict()] for k, c in self.curves.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BucketedCurves:
        """Rebuild bucketed curves from :meth:`to_dict` data."""
        curves = {_key_from_json(k): curve_from_dict(c) for k, c in data.get("buckets", [])}
        return cls(curves=curves, default=curve_from_dict(data["default"]))


def _key_to_json(key: Hashable) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _key_from_json(key: Any) -> Hashable:
    return tuple(key) if isinstance(key, list) else key


__all__ = ["BucketedCurves", "CurveFit", "GridMeans", "fit_family", "select_curve"]
