"""Gain curves: expected answer quality as a function of reasoning tokens T and search calls S.

A :class:`GainCurve` answers ``value(T, S)`` and the marginal gain along each axis; the allocator only
needs those. The families follow the literature: saturating exponentials per axis combined as
*substitutes* (either axis fills the same need), *complements* (both are needed) or both at once
(*mixed*); ``1 − (1 − p)^k`` for k sampled attempts (*sampling*) and its heavy-tailed mixture over p
(*beta_sampling*: the aggregate of per-query exponentials when p is Beta distributed, the power law of
Schaeffer et al. 2025); and log-linear with a cap. Fitting them to outcome tables lives in
:mod:`leadline.budgets.fitting`.

Every family evaluates with numpy broadcasting, and :func:`values_many` stacks the parameters of many
curves of one family so a batch of 10,000 queries is evaluated in a few array operations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, expit

from leadline.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
ArrayLike = float | FloatArray


@runtime_checkable
class GainCurve(Protocol):
    """Expected quality in [0, 1] of a query given T generated tokens and S search calls."""

    @property
    def family(self) -> str:
        """The curve family's name."""

    def value(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Expected answer quality in [0, 1] at ``tokens`` and ``searches`` (broadcast)."""

    def marginal_tokens(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Gain per extra generated token at (T, S)."""
        ...

    def marginal_searches(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Gain of one more search call at (T, S)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The curve as JSON-ready data (``curve_from_dict`` reads it back)."""


def _exp_saturation(x: FloatArray, scale: FloatArray) -> FloatArray:
    return -np.expm1(-np.asarray(x, dtype=np.float64) / scale)


@dataclass(frozen=True)
class ParametricCurve:
    """Shared machinery: evaluation, marginals, stacking, (de)serialization and fitting hooks."""

    FAMILY: ClassVar[str] = ""
    FITTED: ClassVar[tuple[str, ...]] = ()
    """Fitted parameters, in the order of the optimizer's vector."""
    TOKEN_STEP: ClassVar[float] = 16.0
    """Finite-difference step for the token marginal (tokens are counted in whole tokens anyway)."""

    def __post_init__(self) -> None:
        # Plain floats: fitted numpy scalars would leak into JSON and into equality/hashing.
        for f in fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))
        # the parameters as evaluate takes them, once (a frozen curve never changes; not a field)
        object.__setattr__(self, "_param_values", {f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def family(self) -> str:
        """The family's name."""
        return self.FAMILY

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _params(self) -> dict[str, float]:
        values: dict[str, float] = self.__dict__["_param_values"]
        return values

    def value(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Expected quality at (tokens, searches), clipped to [0, 1]; negative inputs count as 0."""
        t = np.maximum(np.asarray(tokens, dtype=np.float64), 0.0)
        s = np.maximum(np.asarray(searches, dtype=np.float64), 0.0)
        return np.clip(self._evaluate(self._params(), t, s), 0.0, 1.0)

    def marginal_tokens(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Quality gained per token at (tokens, searches), over one token step."""
        t = np.asarray(tokens, dtype=np.float64)
        return (self.value(t + self.TOKEN_STEP, searches) - self.value(t, searches)) / self.TOKEN_STEP

    def marginal_searches(self, tokens: ArrayLike, searches: ArrayLike) -> FloatArray:
        """Quality gained by one more search at (tokens, searches)."""
        s = np.asarray(searches, dtype=np.float64)
        return self.value(tokens, s + 1.0) - self.value(tokens, s)

    def to_dict(self) -> dict[str, Any]:
        """The family and its parameters as JSON-ready data."""
        return {"family": self.FAMILY, "params": asdict(self)}

    # -- fitting hooks ---------------------------------------------------------------------------
    @classmethod
    def _params_from(cls, x: Any, fixed: Mapping[str, float]) -> dict[str, Any]:
        """Curve parameters from optimizer vectors (last axis): ``log_x`` → exp, ``logit_x`` → expit."""
        x = np.asarray(x, dtype=np.float64)
        out: dict[str, Any] = {}
        for i, name in enumerate(cls.FITTED):
            v = x[..., i]
            if name.startswith("log_"):
                out[name[4:]] = np.exp(v)
            elif name.startswith("logit_"):
                out[name[6:]] = expit(v)
            else:
                out[name] = v
        for f in fields(cls):
            if f.name not in out:
                out[f.name] = fixed.get(f.name, f.default)
        return out

    @classmethod
    def _from_vector(cls, x: Sequence[float], fixed: Mapping[str, float]) -> ParametricCurve:
        return cls(**{k: float(v) for k, v in cls._params_from(np.asarray(x), fixed).items()})

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        raise NotImplementedError

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        raise NotImplementedError


def _level_guesses(y: FloatArray) -> tuple[float, float]:
    lo = float(np.clip(np.min(y), 0.0, 1.0))
    hi = float(np.clip(np.max(y), 0.0, 1.0))
    return lo, max(hi - lo, 1e-3)


_LOG_TAU = (math.log(10.0), math.log(1e7))
_LOG_SIGMA = (math.log(0.05), math.log(1e4))


@dataclass(frozen=True)
class SubstitutesCurve(ParametricCurve):
    """q0 + a·(1 − e^(−T/τ − S/σ)): tokens and searches fill the same need; either will do."""

    q0: float = 0.0
    a: float = 1.0
    tau: float = 1000.0
    sigma: float = 3.0

    FAMILY: ClassVar[str] = "substitutes"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "a", "log_tau", "log_sigma")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        return cast(FloatArray, p["q0"] + p["a"] * -np.expm1(-tokens / p["tau"] - searches / p["sigma"]))

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        return [0.0, 0.0, _LOG_TAU[0], _LOG_SIGMA[0]], [1.0, 1.0, _LOG_TAU[1], _LOG_SIGMA[1]]

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        return [
            [lo, span, math.log(1000.0), math.log(3.0)],
            [lo, span, math.log(200.0), math.log(1e3)],
            [lo, span, math.log(1e5), math.log(1.0)],
        ]


@dataclass(frozen=True)
class ComplementsCurve(ParametricCurve):
    """q0 + a·(1 − e^(−T/τ))·(1 − e^(−S/σ)): evidence and reasoning are both needed."""

    q0: float = 0.0
    a: float = 1.0
    tau: float = 1000.0
    sigma: float = 3.0

    FAMILY: ClassVar[str] = "complements"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "a", "log_tau", "log_sigma")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        return cast(
            FloatArray,
            p["q0"] + p["a"] * _exp_saturation(tokens, p["tau"]) * _exp_saturation(searches, p["sigma"]),
        )

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        return [0.0, 0.0, _LOG_TAU[0], _LOG_SIGMA[0]], [1.0, 1.0, _LOG_TAU[1], _LOG_SIGMA[1]]

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        return [[lo, span, math.log(1000.0), math.log(3.0)], [lo, span, math.log(300.0), math.log(1.0)]]


@dataclass(frozen=True)
class MixedCurve(ParametricCurve):
    """q0 + a_T·g_T + a_S·g_S + a_B·g_T·g_S, g_x = 1 − e^(−x/scale): each axis alone, and both together."""

    q0: float = 0.0
    a_tokens: float = 0.3
    a_searches: float = 0.3
    a_both: float = 0.3
    tau: float = 1000.0
    sigma: float = 3.0

    FAMILY: ClassVar[str] = "mixed"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "a_tokens", "a_searches", "a_both", "log_tau", "log_sigma")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        gt = _exp_saturation(tokens, p["tau"])
        gs = _exp_saturation(searches, p["sigma"])
        return cast(FloatArray, p["q0"] + p["a_tokens"] * gt + p["a_searches"] * gs + p["a_both"] * gt * gs)

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        lower = [0.0, 0.0, 0.0, 0.0, _LOG_TAU[0], _LOG_SIGMA[0]]
        upper = [1.0, 1.0, 1.0, 1.0, _LOG_TAU[1], _LOG_SIGMA[1]]
        return lower, upper

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        third = span / 3.0
        return [
            [lo, third, third, third, math.log(1000.0), math.log(3.0)],
            [lo, span * 0.8, 0.05, 0.05, math.log(1000.0), math.log(3.0)],
            [lo, 0.05, span * 0.8, 0.05, math.log(1000.0), math.log(3.0)],
        ]


@dataclass(frozen=True)
class SamplingCurve(ParametricCurve):
    """q0 + a·(1 − (1 − p)^k) with k = T / attempt_tokens sampled attempts; searches do not enter."""

    q0: float = 0.0
    a: float = 1.0
    p: float = 0.3
    attempt_tokens: float = 500.0

    FAMILY: ClassVar[str] = "sampling"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "a", "logit_p")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        k = tokens / p["attempt_tokens"]
        out = p["q0"] + p["a"] * -np.expm1(k * np.log1p(-np.minimum(p["p"], 1.0 - 1e-12)))
        return cast(FloatArray, out + 0.0 * searches)

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        return [0.0, 0.0, -12.0], [1.0, 1.0, 12.0]

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        return [[lo, span, 0.0], [lo, span, -3.0], [lo, span, 3.0]]


@dataclass(frozen=True)
class BetaSamplingCurve(ParametricCurve):
    """q0 + a·(1 − B(α, β + k)/B(α, β)): k attempts, p ~ Beta(α, β) within the group (a power-law tail)."""

    q0: float = 0.0
    a: float = 1.0
    alpha: float = 0.5
    beta: float = 1.0
    attempt_tokens: float = 500.0

    FAMILY: ClassVar[str] = "beta_sampling"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "a", "log_alpha", "log_beta")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        k = tokens / p["attempt_tokens"]
        alpha, beta = p["alpha"], p["beta"]
        miss = np.exp(betaln(alpha, beta + k) - betaln(alpha, beta))
        return cast(FloatArray, p["q0"] + p["a"] * (1.0 - miss) + 0.0 * searches)

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        return [0.0, 0.0, math.log(0.01), math.log(0.01)], [1.0, 1.0, math.log(100.0), math.log(100.0)]

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        return [[lo, span, 0.0, 0.0], [lo, span, math.log(0.3), math.log(1.0)], [lo, span, 1.0, -1.0]]


@dataclass(frozen=True)
class LogLinearCurve(ParametricCurve):
    """min(cap, q0 + b_T·log(1 + T/t0) + b_S·log(1 + S)): log-linear scaling until a ceiling."""

    q0: float = 0.0
    b_tokens: float = 0.05
    b_searches: float = 0.1
    cap: float = 1.0
    t0: float = 256.0

    FAMILY: ClassVar[str] = "log_linear"
    FITTED: ClassVar[tuple[str, ...]] = ("q0", "b_tokens", "b_searches", "cap")

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        raw = p["q0"] + p["b_tokens"] * np.log1p(tokens / p["t0"]) + p["b_searches"] * np.log1p(searches)
        return cast(FloatArray, np.minimum(p["cap"], raw))

    @classmethod
    def _bounds(cls) -> tuple[list[float], list[float]]:
        return [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]

    @classmethod
    def _starts(cls, tokens: FloatArray, searches: FloatArray, y: FloatArray) -> list[list[float]]:
        lo, span = _level_guesses(y)
        return [
            [lo, span / 8.0, span / 8.0, min(1.0, lo + span)],
            [lo, span / 3.0, 0.01, min(1.0, lo + span)],
        ]


FAMILIES: dict[str, type[ParametricCurve]] = {
    cls.FAMILY: cls
    for cls in (
        SubstitutesCurve,
        ComplementsCurve,
        MixedCurve,
        SamplingCurve,
        BetaSamplingCurve,
        LogLinearCurve,
    )
}
DEFAULT_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


@dataclass(frozen=True)
class ConstantCurve(ParametricCurve):
    """A flat curve: nothing more to gain (a query that is answered or hopeless)."""

    level: float = 0.0

    FAMILY: ClassVar[str] = "constant"

    @staticmethod
    def _evaluate(p: Mapping[str, Any], tokens: FloatArray, searches: FloatArray) -> FloatArray:
        return cast(FloatArray, p["level"] + 0.0 * tokens + 0.0 * searches)


FAMILIES[ConstantCurve.FAMILY] = ConstantCurve


def curve_from_dict(data: Mapping[str, Any]) -> ParametricCurve:
    """Rebuild a curve written by ``to_dict``."""
    family = data.get("family")
    if family not in FAMILIES:
        raise ConfigError(f"unknown gain-curve family {family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[str(family)](**dict(data.get("params", {})))


def values_many(curves: Sequence[ParametricCurve], tokens: FloatArray, searches: FloatArray) -> FloatArray:
    """Values of many curves of one family on a shared grid: shape ``(len(curves),) + grid shape``."""
    if not curves:
        return np.zeros((0, *np.broadcast(tokens, searches).shape))
    kind = type(curves[0])
    if any(type(c) is not kind for c in curves):
        raise ConfigError("values_many needs curves of one family")
    grid_ndim = np.broadcast(tokens, searches).ndim
    expand = (slice(None),) + (None,) * grid_ndim
    stacked = {
        f.name: np.array([getattr(c, f.name) for c in curves], dtype=np.float64)[expand] for f in fields(kind)
    }
    t = np.maximum(np.asarray(tokens, dtype=np.float64), 0.0)[None, ...]
    s = np.maximum(np.asarray(searches, dtype=np.float64), 0.0)[None, ...]
    out = kind._evaluate(stacked, t, s)
    return np.clip(np.broadcast_to(out, (len(curves), *np.broadcast(tokens, searches).shape)), 0.0, 1.0)


def curve_values(curves: Sequence[GainCurve], tokens: FloatArray, searches: FloatArray) -> FloatArray:
    """Values of any curves on a shared grid, stacked per family where possible."""
    shape = np.broadcast(tokens, searches).shape
    out = np.empty((len(curves), *shape), dtype=np.float64)
    by_kind: dict[type, list[int]] = {}
    for i, curve in enumerate(curves):
        by_kind.setdefault(type(curve), []).append(i)
    for kind, idx in by_kind.items():
        if issubclass(kind, ParametricCurve):
            out[idx] = values_many([curves[i] for i in idx], tokens, searches)  # type: ignore[misc]
        else:
            for i in idx:
                out[i] = np.broadcast_to(curves[i].value(tokens, searches), shape)
    return out


__all__ = [
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "BetaSamplingCurve",
    "ComplementsCurve",
    "ConstantCurve",
    "GainCurve",
    "LogLinearCurve",
    "MixedCurve",
    "ParametricCurve",
    "SamplingCurve",
    "SubstitutesCurve",
    "curve_from_dict",
    "curve_values",
    "values_many",
]
