"""Outcome tables: what each question scored at each budget point, and what it really spent.

A sweep runs a set of questions at a grid of budget points (T tokens, S searches, shape) and stores one
:class:`OutcomeRow` per (question, budget point). Gain curves and difficulty estimators are fitted on the
train rows; allocation policies are compared counterfactually on the dev rows of the same table
(:mod:`leadline.evals.policies`). Tables live in memory and as JSONL; the storage layer persists them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leadline.budgets.difficulty import text_features
from leadline.errors import ConfigError

METRICS = ("em", "f1", "recall")


@dataclass(frozen=True, kw_only=True)
class OutcomeRow:
    """One question at one budget point."""

    question_id: str
    split: str
    question: str
    tokens: int
    searches: int
    shape: str = "sequential"
    answer: str = ""
    em: float = 0.0
    f1: float = 0.0
    recall: float = 0.0
    spent_tokens: int = 0
    spent_searches: int = 0
    features: Mapping[str, float] = field(default_factory=dict)
    """The question's text features (and probe features, when the sweep ran probes)."""

    def __post_init__(self) -> None:
        if self.tokens < 0 or self.searches < 0:
            raise ConfigError(f"budget point of {self.question_id} must be non-negative")
        for metric in METRICS:
            value = getattr(self, metric)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ConfigError(f"{metric} of {self.question_id} must be a finite number, got {value!r}")

    @property
    def point(self) -> tuple[int, int, str]:
        return (self.tokens, self.searches, self.shape)

    def score(self, metric: str = "f1") -> float:
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; known: {METRICS}")
        return float(getattr(self, metric))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = dict(self.features)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutcomeRow:
        known = set(cls.__dataclass_fields__)
        features = dict(data.get("features") or {})
        # Flat tables carry the features as top-level columns.
        for key, value in data.items():
            if key not in known and isinstance(value, int | float) and not isinstance(value, bool):
                features[key] = float(value)
        if data.get("question"):
            # Every row carries the text features, so estimators see one set of columns.
            for key, value in text_features(str(data["question"])).items():
                features.setdefault(key, value)
        try:
            return cls(
                question_id=str(data["question_id"]),
                split=str(data.get("split", "dev")),
                question=str(data.get("question", "")),
                tokens=int(data["tokens"]),
                searches=int(data["searches"]),
                shape=str(data.get("shape", "sequential")),
                answer=str(data.get("answer", "")),
                em=float(data.get("em", 0.0)),
                f1=float(data.get("f1", 0.0)),
                recall=float(data.get("recall", 0.0)),
                spent_tokens=int(data.get("spent_tokens", 0)),
                spent_searches=int(data.get("spent_searches", 0)),
                features=features,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad outcome row: {exc}") from exc


@dataclass
class OutcomeTable:
    """Rows of outcomes, in memory."""

    rows: list[OutcomeRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[OutcomeRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: OutcomeRow) -> None:
        self.rows.append(row)

    def extend(self, rows: Iterable[OutcomeRow]) -> None:
        self.rows.extend(rows)

    def split(self, name: str) -> OutcomeTable:
        return OutcomeTable([r for r in self.rows if r.split == name])

    def question_ids(self) -> list[str]:
        return sorted({r.question_id for r in self.rows})

    def budget_points(self) -> list[tuple[int, int, str]]:
        return sorted({r.point for r in self.rows})

    def complete(self, points: Sequence[tuple[int, int, str]] | None = None) -> OutcomeTable:
        """Only the questions that have a row at every budget point (counterfactual policies need them)."""
        wanted = set(points if points is not None else self.budget_points())
        have: dict[str, set[tuple[int, int, str]]] = {}
        for r in self.rows:
            have.setdefault(r.question_id, set()).add(r.point)
        keep = {q for q, pts in have.items() if wanted <= pts}
        return OutcomeTable([r for r in self.rows if r.question_id in keep and r.point in wanted])

    # -- JSONL ------------------------------------------------------------------------------------
    def write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as f:
            for row in self.rows:
                f.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> OutcomeTable:
        if not path.exists():
            raise ConfigError(f"no outcome table at {path}")
        rows: list[OutcomeRow] = []
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{number}: not JSON: {exc}") from exc
                rows.append(OutcomeRow.from_json(data))
        return cls(rows)


__all__ = ["METRICS", "OutcomeRow", "OutcomeTable"]
