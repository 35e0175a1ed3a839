"""Run-time control: a belief over what a run has not revealed yet, and when another step pays.

Before a run the controller knows a query only through its observables; while the run goes, every step
brings a signal. This module is the part of the controller that learns from those signals. It models a
query by two latent quantities:

- the amplitude ``A`` in [0, 1]: how much the question can be answered at all (the ceiling of its gain
  curve); a prior over a grid of values;
- the kind ``k``: which axis pays — 0 search only, 1 reasoning tokens only, 2 both (complements).

The expected quality of a run that stops after ``C`` reasoning chunks and ``S`` searches is
``A·G_k(C, S)`` with ``G_0 = gs[S]``, ``G_1 = gt[C]``, ``G_2 = gs[S]·gt[C]`` (``gs``/``gt``: the query's
expected search and token curves). Each search yields a binary signal ("a relevant hit") and each chunk
one ("converging"), each Bernoulli with probability ``base[k] + slope[k]·A`` (:class:`SignalModel`).
Given ``(A, k)`` the signals are independent, so the counts (searches, hits, chunks, converging chunks)
are a sufficient statistic and the belief on the grid is exact (:meth:`RuntimeModel.posterior`).

:class:`RuntimePolicy` decides, vectorised over many runs at once: answer now, or take one more step
on either axis. Three rules: ``rule="dp"`` solves the exact dynamic programme over the signal counts
(:mod:`leadline.budgets.runtime_dp`: it values what every later step teaches); ``rule="lookahead"``
takes, for each axis and a few block lengths ``m``, the expectation over the ``m`` signals of the best
fixed continuation under the updated belief, less the priced cost; ``lookahead=False`` is the myopic
rule (step while the best fixed bundle's gain per cost exceeds the price, no learning). One price serves
a batch: ``benchmarks/runtime.py`` finds the price at which the batch meets its budget.
:class:`leadline.budgets.runtime_controller.RuntimeController` drives the same policy inside the loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from leadline.budgets.runtime_dp import SEARCH as SEARCH
from leadline.budgets.runtime_dp import STOP as STOP
from leadline.budgets.runtime_dp import THINK as THINK
from leadline.budgets.runtime_dp import DPHorizon, DPPlan, plan_runs
from leadline.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KINDS = ("search", "tokens", "both")
"""Latent kinds, by index: which axis the query's quality depends on."""

ACTIONS = ("answer", "search", "think")
"""Decision codes of :meth:`RuntimePolicy.decide`, by index."""

_EPS = 1e-6


@dataclass(frozen=True)
class SignalModel:
    """P(signal = 1 | A, k) = clip(base[k] + slope[k]·A) for one kind of step."""

    base: tuple[float, float, float]
    slope: tuple[float, float, float]

    def prob(self, amplitudes: FloatArray) -> FloatArray:
        """(3 kinds, J amplitudes) signal probabilities, kept off 0 and 1."""
        p = np.asarray(self.base)[:, None] + np.asarray(self.slope)[:, None] * amplitudes[None, :]
        return np.clip(p, _EPS, 1.0 - _EPS)

    def to_dict(self) -> dict[str, Any]:
        """The signal model as JSON-ready data."""
        return {"base": list(self.base), "slope": list(self.slope)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalModel:
        """Read a signal model written by :meth:`to_dict`."""
        base, slope = tuple(float(x) for x in data["base"]), tuple(float(x) for x in data["slope"])
        if len(base) != 3 or len(slope) != 3:
            raise ConfigError("a signal model needs base and slope for each of the 3 kinds")
        return cls(base=(base[0], base[1], base[2]), slope=(slope[0], slope[1], slope[2]))


def _beta_grid(alpha: float, beta: float, points: int) -> tuple[FloatArray, FloatArray]:
    """Equal-mass grid of a Beta prior: the conditional mean of each of ``points`` quantile bins."""
    edges = stats.beta.ppf(np.linspace(0.0, 1.0, points + 1), alpha, beta)
    mass = np.diff(stats.beta.cdf(edges, alpha, beta))
    # E[A; bin] = α/(α+β) · P(bin under Beta(α+1, β)).
    partial = np.diff(stats.beta.cdf(edges, alpha + 1.0, beta)) * alpha / (alpha + beta)
    values = np.where(mass > 0, partial / np.maximum(mass, 1e-300), 0.5 * (edges[1:] + edges[:-1]))
    return np.clip(values, 1e-4, 1.0 - 1e-4), mass / mass.sum()


@dataclass(frozen=True)
class RuntimeModel:
    """The prior and the signal likelihoods of the run-time belief, and where their numbers came from."""

    amplitudes: tuple[float, ...]
    amplitude_weights: tuple[float, ...]
    search_signal: SignalModel
    think_signal: SignalModel
    source: str = "prior"
    """Where the numbers came from ("prior": hand-set defaults; otherwise what they were fitted on)."""

    def __post_init__(self) -> None:
        if len(self.amplitudes) != len(self.amplitude_weights) or not self.amplitudes:
            raise ConfigError("amplitude grid and weights must be non-empty and of equal length")
        if any(w < 0 for w in self.amplitude_weights) or sum(self.amplitude_weights) <= 0:
            raise ConfigError("amplitude weights must be non-negative with a positive sum")

    @classmethod
    def beta_prior(
        cls,
        alpha: float,
        beta: float,
        *,
        search_signal: SignalModel,
        think_signal: SignalModel,
        points: int = 48,
        source: str = "prior",
    ) -> RuntimeModel:
        """A model whose amplitude prior is Beta(alpha, beta), discretised on equal-mass bins."""
        if alpha <= 0 or beta <= 0:
            raise ConfigError(f"Beta prior parameters must be positive, got {alpha}, {beta}")
        a, w = _beta_grid(alpha, beta, points)
        return cls(
            amplitudes=tuple(a.tolist()),
            amplitude_weights=tuple(w.tolist()),
            search_signal=search_signal,
            think_signal=think_signal,
            source=source,
        )

    @classmethod
    def default(cls) -> RuntimeModel:
        """The prior the loop runs on until traces replace it (hand-set, not fitted; ``source="prior"``).

        Amplitude Beta(0.35, 0.6) (many questions the model cannot answer, many it answers well); a
        search that finds something relevant is likely when the answer is reachable by search, a
        converging answer when reasoning helps.
        """
        return cls.beta_prior(
            0.35,
            0.6,
            search_signal=SignalModel(base=(0.0, 0.0, 0.0), slope=(0.9, 0.3, 0.9)),
            think_signal=SignalModel(base=(0.2, 0.2, 0.2), slope=(0.2, 0.6, 0.6)),
            source="prior",
        )

    @property
    def grid(self) -> FloatArray:
        """The amplitude grid the belief is held on (equal-mass bins of the prior)."""
        return np.asarray(self.amplitudes, dtype=np.float64)

    def log_prior(self, kind_prior: FloatArray) -> FloatArray:
        """(n, 3, J) log prior weights given each run's (n, 3) prior over the kind."""
        kp = np.clip(np.asarray(kind_prior, dtype=np.float64), 1e-300, None)
        return np.log(kp)[:, :, None] + np.log(np.asarray(self.amplitude_weights) + 1e-300)[None, None, :]

    def posterior(
        self,
        kind_prior: FloatArray,
        searches: IntArray,
        search_hits: IntArray,
        thinks: IntArray,
        think_hits: IntArray,
    ) -> FloatArray:
        """(n, 3, J) posterior weights over (kind, amplitude) after the given signal counts."""
        a = self.grid
        ps, pt = self.search_signal.prob(a), self.think_signal.prob(a)
        s, hs = np.asarray(searches, np.float64), np.asarray(search_hits, np.float64)
        c, hc = np.asarray(thinks, np.float64), np.asarray(think_hits, np.float64)
        logw = self.log_prior(kind_prior)
        logw = logw + hs[:, None, None] * np.log(ps)[None] + (s - hs)[:, None, None] * np.log1p(-ps)[None]
        logw = logw + hc[:, None, None] * np.log(pt)[None] + (c - hc)[:, None, None] * np.log1p(-pt)[None]
        logw -= logw.max(axis=(1, 2), keepdims=True)
        w = np.exp(logw)
        return np.asarray(w / w.sum(axis=(1, 2), keepdims=True), dtype=np.float64)

    def expected_amplitude(self, weights: FloatArray) -> FloatArray:
        """(n, 3): E[A · 1{kind = k}] under the belief — all the value of a plan depends on."""
        return np.asarray((weights * self.grid[None, None, :]).sum(axis=2), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data (what a fitted controller ships)."""
        return {
            "amplitudes": list(self.amplitudes),
            "amplitude_weights": list(self.amplitude_weights),
            "search_signal": self.search_signal.to_dict(),
            "think_signal": self.think_signal.to_dict(),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeModel:
        """Read a model written by :meth:`to_dict`."""
        try:
            return cls(
                amplitudes=tuple(float(x) for x in data["amplitudes"]),
                amplitude_weights=tuple(float(x) for x in data["amplitude_weights"]),
                search_signal=SignalModel.from_dict(data["search_signal"]),
                think_signal=SignalModel.from_dict(data["think_signal"]),
                source=str(data.get("source", "prior")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a runtime model: {exc}") from exc


def plan_value(m: FloatArray, gs: FloatArray, gt: FloatArray) -> FloatArray:
    """Σ_k m_k·G_k for arrays broadcasting together: m (..., 3), gs and gt (...)."""
    return m[..., 0] * gs + m[..., 1] * gt + m[..., 2] * gs * gt


@dataclass(frozen=True)
class RuntimeDecisions:
    """What :meth:`RuntimePolicy.decide` chose for each run, and the values behind each choice."""

    action: IntArray
    """STOP, SEARCH or THINK per run."""
    stop_value: FloatArray
    """Expected quality of answering now."""
    search_value: FloatArray
    """Best net value (expected quality less priced cost) of continuing with a search (-inf: not allowed)."""
    think_value: FloatArray
    """The same for a reasoning chunk."""
    block: IntArray
    """The look-ahead block length behind the chosen step (0 when stopping or myopic; the dynamic
    programme's horizon in steps under ``rule="dp"``)."""
    rule: str = "lookahead"
    """Which rule decided ("dp", "lookahead" or "myopic")."""

    def reason(self, i: int = 0) -> str:
        """Why run ``i``'s decision was taken, in one line."""
        stop, srch, thnk = (float(x[i]) for x in (self.stop_value, self.search_value, self.think_value))
        act = ACTIONS[int(self.action[i])]
        vals = f"answer now {stop:.4f}, search {srch:.4f}, think {thnk:.4f} (net of priced cost)"
        if act == "answer":
            return f"answer now: no step's expected value beats answering ({vals})"
        if self.rule == "dp":
            return f"{act}: the dynamic programme ({int(self.block[i])} steps ahead) values it most ({vals})"
        return f"{act}: look-ahead of {int(self.block[i])} step(s) pays most ({vals})"


@dataclass(frozen=True)
class RuntimePolicy:
    """Answer now or take one more step, vectorised over runs (see the module docstring)."""

    model: RuntimeModel
    search_cost: float = 500.0
    """Cost of one search in token-equivalents (λ)."""
    think_cost: float = 500.0
    """Cost of one reasoning chunk in tokens."""
    blocks: tuple[int, ...] = (1, 3, 8)
    """Look-ahead block lengths: a block's signals are seen before the continuation is chosen."""
    think_offsets: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
    search_offsets: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
    """Continuation plans considered: these many more chunks × searches (clipped at the caps)."""
    rule: str = "dp"
    """"dp" (the default, what the loop and the trace evaluation run): the exact dynamic programme over
    the signal counts (:mod:`leadline.budgets.runtime_dp`);
    "lookahead": blocks of signals followed by the best fixed continuation; "myopic": the best fixed
    bundle, no learning."""
    horizon: DPHorizon = field(default_factory=DPHorizon)
    """How far the dynamic programme looks from where a run stands (with ``rule="dp"``)."""
    prune: bool = True
    """Look only as deep as a run's curves can repay (:func:`~leadline.budgets.runtime_dp.repaid_depth`)."""
    _binom: dict[tuple[int, int], FloatArray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _tables: dict[tuple[bytes, DPHorizon], FloatArray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _block_likelihood(self, axis: int, m: int) -> FloatArray:
        """(m + 1, 3, J): P(h hits of m | kind, A) for a block on ``axis``."""
        key = (axis, m)
        if key not in self._binom:
            signal = self.model.search_signal if axis == SEARCH else self.model.think_signal
            p = signal.prob(self.model.grid)
            h = np.arange(m + 1)[:, None, None]
            self._binom[key] = stats.binom.pmf(h, m, p[None]).astype(np.float64)
        return self._binom[key]

    def _continuation(
        self,
        m_h: FloatArray,
        p_h: FloatArray,
        gs: FloatArray,
        gt: FloatArray,
        thinks: IntArray,
        searches: IntArray,
        price: FloatArray,
    ) -> FloatArray:
        """Σ_h max over continuation plans of [Σ_k M_k(h)·G_k − P(h)·price·cost]; M, P unnormalised.

        m_h: (n, H, 3); p_h: (n, H); the runs stand at ``thinks`` chunks and ``searches`` searches.
        """
        max_c, max_s = gt.shape[1] - 1, gs.shape[1] - 1
        rows = np.arange(len(thinks))[:, None]
        ci = np.minimum(thinks[:, None] + np.asarray(self.think_offsets)[None, :], max_c)  # (n, Dc)
        si = np.minimum(searches[:, None] + np.asarray(self.search_offsets)[None, :], max_s)  # (n, Ds)
        g_t, g_s = gt[rows, ci], gs[rows, si]
        cost = (
            self.think_cost * (ci - thinks[:, None])[:, :, None]
            + self.search_cost * (si - searches[:, None])[:, None, :]
        )  # (n, Dc, Ds)
        value = (
            m_h[:, :, 0, None, None] * g_s[:, None, None, :]
            + m_h[:, :, 1, None, None] * g_t[:, None, :, None]
            + m_h[:, :, 2, None, None] * (g_t[:, :, None] * g_s[:, None, :])[:, None]
            - (p_h * price[:, None])[:, :, None, None] * cost[:, None]
        )
        return np.asarray(value.reshape(value.shape[0], value.shape[1], -1).max(axis=2).sum(axis=1))

    def decide(
        self,
        *,
        kind_prior: FloatArray,
        gs: FloatArray,
        gt: FloatArray,
        searches: IntArray,
        search_hits: IntArray,
        thinks: IntArray,
        think_hits: IntArray,
        price: float | FloatArray,
        lookahead: bool = True,
    ) -> RuntimeDecisions:
        """One decision per run.

        kind_prior (n, 3): P(kind) from the observables; gs (n, S+1) and gt (n, C+1): each run's expected
        search and token curves at 0..S searches and 0..C chunks (their lengths set the caps); the signal
        counts so far; ``price``: quality per token-equivalent (one per batch, or one per run).
        """
        n = len(searches)
        searches = np.asarray(searches, np.int64)
        thinks = np.asarray(thinks, np.int64)
        mu = np.broadcast_to(np.asarray(price, dtype=np.float64), (n,)).astype(np.float64)
        lookahead = lookahead and self.rule != "myopic"
        if lookahead and self.rule == "dp":
            p = self.plan(kind_prior, gs, gt, searches, search_hits, thinks, think_hits, mu)
            return RuntimeDecisions(
                action=p.first,
                stop_value=p.stop_value,
                search_value=p.search_value,
                think_value=p.think_value,
                block=p.limits[:, 2],
                rule="dp",
            )
        w = self.model.posterior(kind_prior, searches, search_hits, thinks, think_hits)
        m_now = self.model.expected_amplitude(w)
        rows = np.arange(n)
        stop = plan_value(m_now, gs[rows, searches], gt[rows, thinks])
        max_c, max_s = gt.shape[1] - 1, gs.shape[1] - 1
        best = {SEARCH: np.full(n, -np.inf), THINK: np.full(n, -np.inf)}
        block = {SEARCH: np.zeros(n, np.int64), THINK: np.zeros(n, np.int64)}
        if not lookahead:
            self._myopic(m_now, gs, gt, thinks, searches, mu, stop, best)
        else:
            a = self.model.grid
            for axis, room, unit in (
                (SEARCH, max_s - searches, self.search_cost),
                (THINK, max_c - thinks, self.think_cost),
            ):
                for m in self.blocks:
                    ok = room >= m if m > 1 else room >= 1
                    if not ok.any():
                        continue
                    idx = np.flatnonzero(ok)
                    lik = self._block_likelihood(axis, m)  # (H, 3, J)
                    joint = w[idx][:, None] * lik[None]  # (k, H, 3, J)
                    m_h = (joint * a).sum(axis=3)
                    p_h = joint.sum(axis=(2, 3))
                    s_next = searches[idx] + (m if axis == SEARCH else 0)
                    c_next = thinks[idx] + (m if axis == THINK else 0)
                    v = self._continuation(m_h, p_h, gs[idx], gt[idx], c_next, s_next, mu[idx])
                    v = v - mu[idx] * unit * m
                    better = v > best[axis][idx]
                    best[axis][idx[better]] = v[better]
                    block[axis][idx[better]] = m
        action = np.full(n, STOP, dtype=np.int64)
        go_search = (best[SEARCH] > stop + 1e-12) & (best[SEARCH] >= best[THINK])
        go_think = (best[THINK] > stop + 1e-12) & ~go_search
        action[go_search], action[go_think] = SEARCH, THINK
        chosen = np.where(action == SEARCH, block[SEARCH], np.where(action == THINK, block[THINK], 0))
        return RuntimeDecisions(
            action=action,
            stop_value=stop,
            search_value=best[SEARCH],
            think_value=best[THINK],
            block=chosen,
            rule="lookahead" if lookahead else "myopic",
        )

    def plan(
        self,
        kind_prior: FloatArray,
        gs: FloatArray,
        gt: FloatArray,
        searches: IntArray,
        search_hits: IntArray,
        thinks: IntArray,
        think_hits: IntArray,
        price: float | FloatArray,
        *,
        chunk: int = 64,
        dtype: Any = np.float64,
    ) -> DPPlan:
        """Solve the dynamic programme for each run from where it stands (arguments as :meth:`decide`).

        Runs that start from the same belief (same kind prior and counts) share its tables, which do not
        depend on the price and are kept for the next call; the plan's actions are relative to the counts.
        """
        return plan_runs(
            self.model,
            self.horizon,
            self._tables,
            kind_prior=np.asarray(kind_prior, np.float64),
            gs=gs,
            gt=gt,
            counts=(searches, search_hits, thinks, think_hits),
            price=price,
            costs=(self.search_cost, self.think_cost),
            prune=self.prune,
            chunk=chunk,
            dtype=dtype,
        )

    def _myopic(
        self,
        m_now: FloatArray,
        gs: FloatArray,
        gt: FloatArray,
        thinks: IntArray,
        searches: IntArray,
        mu: FloatArray,
        stop: FloatArray,
        best: dict[int, FloatArray],
    ) -> None:
        """No learning: the best fixed bundle; its first step on the axis it adds more of (searches first)."""
        n = len(thinks)
        max_c, max_s = gt.shape[1] - 1, gs.shape[1] - 1
        rows = np.arange(n)[:, None]
        ci = np.minimum(thinks[:, None] + np.asarray(self.think_offsets)[None, :], max_c)
        si = np.minimum(searches[:, None] + np.asarray(self.search_offsets)[None, :], max_s)
        dc, ds = ci - thinks[:, None], si - searches[:, None]
        cost = self.think_cost * dc[:, :, None] + self.search_cost * ds[:, None, :]
        value = (
            plan_value(m_now[:, None, None, :], gs[rows, si][:, None, :], gt[rows, ci][:, :, None])
            - mu[:, None, None] * cost
        )
        flat = value.reshape(n, -1)
        arg = flat.argmax(axis=1)
        v = flat[np.arange(n), arg]
        jc, js = np.unravel_index(arg, value.shape[1:])
        first_search = ds[np.arange(n), js] > 0
        first_think = ~first_search & (dc[np.arange(n), jc] > 0)
        best[SEARCH][first_search] = v[first_search]
        best[THINK][first_think] = v[first_think]
        del stop


def kind_prior_from_report(reported: Sequence[int] | IntArray, right: float = 0.85) -> FloatArray:
    """(n, 3) P(kind) when a reported kind is right with probability ``right``, else one of the others."""
    r = np.asarray(reported, dtype=np.int64)
    out = np.full((len(r), 3), (1.0 - right) / 2.0)
    out[np.arange(len(r)), r] = right
    return out


def lognormal_curve(mu: FloatArray, sd: float, steps: int, *, nodes: int = 15) -> FloatArray:
    """(n, steps + 1): E[1 − exp(−x/θ)] at x = 0..steps with log θ ~ N(mu, sd²) (Gauss–Hermite)."""
    z, wz = np.polynomial.hermite_e.hermegauss(nodes)
    wz = wz / wz.sum()
    theta = np.exp(np.asarray(mu, np.float64)[:, None] + sd * z[None, :])  # (n, nodes)
    x = np.arange(steps + 1, dtype=np.float64)
    return np.asarray((-np.expm1(-x[None, :, None] / theta[:, None, :]) * wz).sum(axis=2))


def normal_posterior(
    prior_mean: float, prior_sd: float, noise_sd: float, seen: FloatArray
) -> tuple[FloatArray, float]:
    """Posterior mean and sd of a normal quantity seen with normal noise."""
    pv, nv = prior_sd**2, noise_sd**2
    post_var = 1.0 / (1.0 / pv + 1.0 / nv)
    mean = post_var * (prior_mean / pv + np.asarray(seen, np.float64) / nv)
    return mean, math.sqrt(post_var)


__all__ = [
    "ACTIONS",
    "KINDS",
    "RuntimeDecisions",
    "RuntimeModel",
    "RuntimePolicy",
    "SignalModel",
    "kind_prior_from_report",
    "lognormal_curve",
    "normal_posterior",
    "plan_value",
]
