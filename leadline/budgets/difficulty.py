"""Difficulty estimators: how likely a question is to fail at a small budget, before spending much.

Every estimator returns a :class:`Difficulty`: a score in [0, 1] (the estimated probability that a run
fails at a small budget), an uncertainty in [0, 1], the features it used, and the question type the
shape choice needs ("compositional" multi-hop or "single" fact). Three kinds:

* :class:`TextFeatureEstimator` — no model call: length, capitalized entities, multi-hop cues (nested
  relative clauses and possessives), comparison, temporal and numeric cues, combined by a fixed prior
  weighting (replace it with a :class:`LearnedEstimator` fitted on outcomes);
* :class:`ProbeEstimator` — the results of cheap probes, passed in (no model call inside): the score
  spread of a first search, the agreement of two short samples, an answer's mean log-probability;
* :class:`LearnedEstimator` — L2-regularized logistic regression (numpy/scipy) fitted on stored
  outcomes (``fit(features, failed)``), with a Laplace-approximation uncertainty, saved as JSON;
  :class:`IsotonicCalibrator` maps any raw score to a calibrated failure rate (pool-adjacent-violators).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit

from leadline.errors import ConfigError

QuestionType = Literal["compositional", "single"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Difficulty:
    """An estimate: ``score`` is the estimated chance of failing at a small budget."""

    score: float
    uncertainty: float
    qtype: QuestionType = "single"
    features: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("score", "uncertainty"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ConfigError(f"difficulty {name} must be in [0, 1], got {value!r}")


@runtime_checkable
class DifficultyEstimator(Protocol):
    """Anything that scores how hard a question is before any compute is spent on it."""

    def estimate(self, question: str) -> Difficulty:
        """The question's difficulty in [0, 1] with its uncertainty, question type and features."""


# -- text features ----------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")
_ENTITY = re.compile(r"(?:\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|and|von|van|la|le)?\s*[A-Z][\w'’.-]*)*)")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{2,})[\"“”«»]")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_MULTIHOP = re.compile(
    r"\b(whose|which|that|who|where|when)\b.*\b(of|by|in|from|for)\b|\b(the\s+\w+\s+of\s+the)\b|"
    r"\b\w+'s\s+\w+'s\b|\bwhere\s+\w+\s+(was|were|is)\b",
    re.IGNORECASE,
)
_RELATIVE = re.compile(r"\b(whose|which|that|who|whom|where)\b", re.IGNORECASE)
_COMPARISON = re.compile(
    r"\b(both|same|more|less|fewer|older|younger|earlier|later|first|last|larger|smaller|longer|shorter|"
    r"higher|lower|bigger|than|either|or|compared|between)\b|\b\w+est\b",
    re.IGNORECASE,
)
_TEMPORAL = re.compile(
    r"\b(when|year|years|date|before|after|during|since|until|century|decade)\b", re.IGNORECASE
)
_NUMERIC = re.compile(
    r"\b(how many|how much|how long|how old|number of|population|percent|total)\b", re.IGNORECASE
)
_YESNO = re.compile(r"^\s*(is|are|was|were|do|does|did|can|could|has|have|had)\b", re.IGNORECASE)

TEXT_FEATURES: tuple[str, ...] = (
    "length",
    "entities",
    "quoted",
    "relative_clauses",
    "multihop",
    "comparison",
    "temporal",
    "numeric",
    "yes_no",
)


def text_features(question: str) -> dict[str, float]:
    """Cheap features of the question text (no model call)."""
    words = _WORD.findall(question)
    body = question[1:] if question else question  # the first word is capitalized anyway
    entities = [e for e in _ENTITY.findall(body) if e.strip()]
    return {
        "length": math.log1p(len(words)),
        "entities": float(len(entities) + len(_QUOTED.findall(question))),
        "quoted": float(len(_QUOTED.findall(question))),
        "relative_clauses": float(len(_RELATIVE.findall(question))),
        "multihop": 1.0 if _MULTIHOP.search(question) else 0.0,
        "comparison": float(min(3, len(_COMPARISON.findall(question)))),
        "temporal": float(bool(_TEMPORAL.search(question)) or bool(_YEAR.search(question))),
        "numeric": float(bool(_NUMERIC.search(question)) or bool(_NUMBER.search(_YEAR.sub("", question)))),
        "yes_no": 1.0 if _YESNO.match(question) else 0.0,
    }


def question_type(features: Mapping[str, float]) -> QuestionType:
    """Compositional when the question chains facts (relative clauses, nested possessives)."""
    chained = features.get("multihop", 0.0) > 0 or features.get("relative_clauses", 0.0) >= 2
    comparison_only = features.get("comparison", 0.0) > 0 and features.get("relative_clauses", 0.0) == 0
    return "compositional" if chained and not comparison_only else "single"


# A prior, not a fit: longer questions with more entities and chained clauses fail more often at a
# small budget; yes/no questions less often. A LearnedEstimator fitted on outcomes replaces it.
_PRIOR_WEIGHTS = {
    "length": 0.6,
    "entities": 0.15,
    "quoted": 0.1,
    "relative_clauses": 0.35,
    "multihop": 0.5,
    "comparison": 0.1,
    "temporal": 0.15,
    "numeric": 0.25,
    "yes_no": -1.0,
}
_PRIOR_BIAS = -2.2


@dataclass(frozen=True)
class TextFeatureEstimator:
    """Difficulty from the question text alone, with fixed prior weights."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(_PRIOR_WEIGHTS))
    bias: float = _PRIOR_BIAS

    def estimate(self, question: str) -> Difficulty:
        """Score the question from its text features with the fixed prior weights (wide uncertainty)."""
        features = text_features(question)
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        score = float(expit(z))
        # A fixed prior knows little: wide uncertainty, narrower near the extremes.
        return Difficulty(score=score, uncertainty=0.5, qtype=question_type(features), features=features)


# -- probes -----------------------------------------------------------------------------------------


def _answer_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def answer_agreement(first: str, second: str) -> float:
    """Token-F1 between two short answers: 1 when they agree, 0 when they share nothing."""
    a, b = _answer_tokens(first), _answer_tokens(second)
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    common = sum(min(a.count(t), b.count(t)) for t in set(a))
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def probe_features(
    *,
    retrieval_scores: Sequence[float] = (),
    samples: Sequence[str] = (),
    answer_logprob: float | None = None,
) -> dict[str, float]:
    """Features of probe results: score spread of a first search, sample agreement, answer log-prob."""
    scores = np.asarray([s for s in retrieval_scores if math.isfinite(s)], dtype=np.float64)
    if scores.size >= 2:
        top = float(scores.max())
        spread = (top - float(np.median(scores))) / (abs(top) + 1e-9)
    elif scores.size == 1:
        spread = 1.0
    else:
        spread = 0.0
    agreement = answer_agreement(samples[0], samples[1]) if len(samples) >= 2 else 0.5
    logprob = float(answer_logprob) if answer_logprob is not None and math.isfinite(answer_logprob) else -1.0
    return {
        "score_spread": float(np.clip(spread, 0.0, 1.0)),
        "sample_agreement": float(agreement),
        "answer_logprob": float(np.clip(logprob, -10.0, 0.0)),
        "has_hits": 1.0 if scores.size else 0.0,
    }


@dataclass(frozen=True)
class ProbeEstimator:
    """Difficulty from probe results, optionally on top of a text estimate."""

    text: TextFeatureEstimator | None = field(default_factory=TextFeatureEstimator)

    def estimate_from(
        self,
        question: str,
        *,
        retrieval_scores: Sequence[float] = (),
        samples: Sequence[str] = (),
        answer_logprob: float | None = None,
    ) -> Difficulty:
        """Difficulty from the text features plus what cheap probes saw: retrieval score spread, agreement
        of short samples, answer log-probability.
        """
        probes = probe_features(
            retrieval_scores=retrieval_scores, samples=samples, answer_logprob=answer_logprob
        )
        informative = (
            int(bool(len(retrieval_scores))) + int(len(samples) >= 2) + int(answer_logprob is not None)
        )
        return self.estimate_probes(question, probes, informative=informative)

    def estimate_probes(
        self, question: str, probes: Mapping[str, float], *, informative: int = 3
    ) -> Difficulty:
        """Difficulty from probe features already computed (:func:`probe_features`'s keys)."""
        prior = self.text.estimate(question) if self.text is not None else None
        z = float(np.log(prior.score / (1 - prior.score))) if prior is not None else 0.0
        # A peaked first search, agreeing samples and a confident answer all mean an easier question.
        z += -1.5 * (probes["score_spread"] - 0.3) - 2.0 * (probes["sample_agreement"] - 0.5)
        z += -0.5 * (probes["answer_logprob"] + 1.0) + (1.0 - probes["has_hits"])
        features = dict(prior.features) if prior is not None else {}
        features.update(probes)
        return Difficulty(
            score=float(expit(z)),
            uncertainty=float(0.5 - 0.1 * informative),
            qtype=prior.qtype if prior is not None else "single",
            features=features,
        )

    def estimate(self, question: str) -> Difficulty:
        """Without probe results this is the text estimate."""
        return self.estimate_from(question)


# -- learned ----------------------------------------------------------------------------------------


@dataclass
class LearnedEstimator:
    """L2-regularized logistic regression of "failed at a small budget" on named features."""

    feature_names: tuple[str, ...] = TEXT_FEATURES
    l2: float = 1.0
    coef: FloatArray | None = None
    intercept: float = 0.0
    mean: FloatArray | None = None
    scale: FloatArray | None = None
    covariance: FloatArray | None = None
    """Laplace approximation of the posterior covariance of (intercept, coef)."""

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> FloatArray:
        x = np.array([[float(r.get(k, 0.0)) for k in self.feature_names] for r in rows], dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ConfigError("difficulty features must be finite numbers")
        return x

    def fit(
        self, features: Sequence[Mapping[str, float]], failed: Sequence[bool | int | float]
    ) -> LearnedEstimator:
        """Fit the logistic model of "fails at a small budget" on feature rows and their outcomes; returns
        self.
        """
        x = self._matrix(features)
        y = np.asarray(failed, dtype=np.float64)
        if len(x) != len(y):
            raise ConfigError("features and labels must have one length")
        if len(y) < 4 or y.min() == y.max():
            raise ConfigError("need at least 4 outcomes with both failures and successes to fit")
        self.mean = x.mean(axis=0)
        self.scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
        z = np.column_stack([np.ones(len(x)), (x - self.mean) / self.scale])
        l2 = self.l2
        penalty = np.r_[0.0, np.full(z.shape[1] - 1, l2)]

        def loss(w: FloatArray) -> tuple[float, FloatArray]:
            eta = z @ w
            nll = float(np.sum(np.logaddexp(0.0, eta) - y * eta)) + 0.5 * float(np.sum(penalty * w * w))
            grad = z.T @ (expit(eta) - y) + penalty * w
            return nll, grad

        result = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B")
        w = result.x
        p = expit(z @ w)
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        self.covariance = np.linalg.inv(hessian)
        self.intercept = float(w[0])
        self.coef = w[1:]
        return self

    def _design(self, rows: Sequence[Mapping[str, float]]) -> FloatArray:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("the learned estimator is not fitted")
        x = self._matrix(rows)
        return np.column_stack([np.ones(len(x)), (x - self.mean) / self.scale])

    def predict(self, rows: Sequence[Mapping[str, float]]) -> tuple[FloatArray, FloatArray]:
        """Failure probability and its uncertainty (posterior std of the probability, in [0, 0.5])."""
        z = self._design(rows)
        assert self.coef is not None and self.covariance is not None
        w = np.r_[self.intercept, self.coef]
        eta = z @ w
        var = np.einsum("ij,jk,ik->i", z, self.covariance, z)
        p = expit(eta)
        return p, np.clip(p * (1 - p) * np.sqrt(np.maximum(var, 0.0)), 0.0, 0.5)

    def estimate_features(self, features: Mapping[str, float], qtype: QuestionType = "single") -> Difficulty:
        """Difficulty from a feature row (the fitted failure probability, its uncertainty from the
        coefficient covariance).
        """
        p, u = self.predict([features])
        return Difficulty(
            score=float(p[0]), uncertainty=float(min(1.0, 2 * u[0])), qtype=qtype, features=dict(features)
        )

    def estimate(self, question: str) -> Difficulty:
        """Difficulty of a question from its text features."""
        features = text_features(question)
        return self.estimate_features(features, question_type(features))

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fitted model as JSON-ready data (raises ConfigError when not fitted)."""
        if self.coef is None or self.mean is None or self.scale is None or self.covariance is None:
            raise ConfigError("the learned estimator is not fitted")
        return {
            "kind": "logistic",
            "feature_names": list(self.feature_names),
            "l2": self.l2,
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "covariance": self.covariance.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedEstimator:
        """Rebuild a fitted estimator from :meth:`to_dict` data."""
        if data.get("kind") != "logistic":
            raise ConfigError(f"not a logistic difficulty estimator: {data.get('kind')!r}")
        return cls(
            feature_names=tuple(data["feature_names"]),
            l2=float(data["l2"]),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            covariance=np.asarray(data["covariance"], dtype=np.float64),
        )

    def save(self, path: Path) -> None:
        """Write the fitted model as JSON to ``path``."""
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> LearnedEstimator:
        """Read a fitted model written by :meth:`save` (a ConfigError when unreadable)."""
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot read difficulty estimator {path}: {exc}") from exc


@dataclass
class IsotonicCalibrator:
    """Monotone map from a raw score to a failure rate, by pool-adjacent-violators."""

    thresholds: FloatArray | None = None
    values: FloatArray | None = None

    def fit(self, scores: Sequence[float], failed: Sequence[bool | int | float]) -> IsotonicCalibrator:
        """Fit a monotone map from scores to failure rates (pool-adjacent-violators); returns self."""
        x = np.asarray(scores, dtype=np.float64)
        y = np.asarray(failed, dtype=np.float64)
        if len(x) != len(y) or len(x) < 2:
            raise ConfigError("need at least two scored outcomes to calibrate")
        order = np.argsort(x, kind="stable")
        xs, ys = x[order], y[order]
        blocks: list[list[float]] = []  # [sum, count, right x]
        for xi, yi in zip(xs, ys, strict=True):
            blocks.append([yi, 1.0, xi])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                s, c, r = blocks.pop()
                blocks[-1][0] += s
                blocks[-1][1] += c
                blocks[-1][2] = r
        self.thresholds = np.array([b[2] for b in blocks])
        self.values = np.array([b[0] / b[1] for b in blocks])
        return self

    def predict(self, scores: Sequence[float] | FloatArray) -> FloatArray:
        """The calibrated failure probability of each score."""
        if self.thresholds is None or self.values is None:
            raise ConfigError("the calibrator is not fitted")
        idx = np.searchsorted(self.thresholds, np.asarray(scores, dtype=np.float64), side="left")
        return self.values[np.clip(idx, 0, len(self.values) - 1)]


def roc_auc(scores: Sequence[float] | FloatArray, labels: Sequence[bool | int | float] | FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


__all__ = [
    "TEXT_FEATURES",
    "Difficulty",
    "DifficultyEstimator",
    "IsotonicCalibrator",
    "LearnedEstimator",
    "ProbeEstimator",
    "QuestionType",
    "TextFeatureEstimator",
    "answer_agreement",
    "probe_features",
    "question_type",
    "roc_auc",
    "text_features",
]
