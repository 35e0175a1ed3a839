"""An upper bound on what any allocation of a batch can reach: the certificate behind a "no policy can".

Given each query's expected quality at every choosable budget point (``values``, one row per query) and
the cost of each point, no assignment of points to queries with mean cost at most ``B`` has a higher
mean expected quality than

    min over μ ≥ 0 of  mean_i max_g [values[i, g] − μ·costs[g]] + μ·B

(weak Lagrangian duality; it holds for every rule — greedy, exhaustive, randomised). The function is
convex and piecewise linear in μ, so bisection on its slope finds the minimum. ``benchmarks/controller.py``
uses it on expected curves given the observables to bound what any observables-only policy can close.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from leadline.errors import InvalidBudgetError

FloatArray = npt.NDArray[np.float64]


def dual_upper_bound(
    values: FloatArray, costs: FloatArray, mean_budget: float, *, iterations: int = 60
) -> float:
    """Upper bound on the mean of ``values[i, x_i]`` over plans with ``mean(costs[x_i]) <= mean_budget``."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    if v.ndim != 2 or c.shape != (v.shape[1],):
        raise ValueError(f"values must be (queries, points) and costs (points,), got {v.shape} and {c.shape}")
    if not np.isfinite(mean_budget) or mean_budget < float(c.min()):
        raise InvalidBudgetError(f"mean budget {mean_budget!r} is below the cheapest point {float(c.min())}")

    def at(mu: float) -> tuple[float, float]:
        score = v - mu * c[None, :]
        best = score.argmax(axis=1)
        value = float(score[np.arange(len(best)), best].mean()) + mu * mean_budget
        return value, float(c[best].mean()) - mean_budget  # the value and minus its slope in μ

    lo, hi = 0.0, 1.0
    while at(hi)[1] > 0.0:
        hi *= 2.0
        if hi > 1e12:  # only costlier points add value, yet none is affordable: the bound at μ = hi holds
            break
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if at(mid)[1] > 0.0:
            lo = mid
        else:
            hi = mid
    return min(at(lo)[0], at(hi)[0])


__all__ = ["dual_upper_bound"]
