"""Outcome tables: what each question scored at each budget point, and what it really spent.

A sweep runs a set of questions at a grid of budget points (T tokens, S searches, shape) and stores one
:class:`OutcomeRow` per (question, budget point). Gain curves and difficulty estimators are fitted on the
train rows; allocation policies are compared counterfactually on the dev rows of the same table
(:mod:`leadline.evals.policies`). Tables live in memory and as JSONL; the storage layer persists them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.budgets.difficulty import text_features
from leadline.errors import ConfigError
from leadline.storage.records import OUTCOME_METRICS, OutcomeRecord

METRICS = OUTCOME_METRICS

OutcomeRow = OutcomeRecord
"""One question at one budget point: the storage layer's :class:`~leadline.storage.records.OutcomeRecord`
(one type for the sweep's JSONL, the store's ``outcome_rows`` and the fitting code)."""


def row_from_json(data: Mapping[str, Any]) -> OutcomeRow:
    """Parse one outcome row; every row carries the question's text features (explicit columns win)."""
    return OutcomeRecord.from_json(data, features_of=text_features)


@dataclass
class OutcomeTable:
    """Rows of outcomes, in memory."""

    rows: list[OutcomeRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[OutcomeRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: OutcomeRow) -> None:
        """Append one row."""
        self.rows.append(row)

    def extend(self, rows: Iterable[OutcomeRow]) -> None:
        """Append rows."""
        self.rows.extend(rows)

    def split(self, name: str) -> OutcomeTable:
        """The rows of one split (``train`` or ``dev``)."""
        return OutcomeTable([r for r in self.rows if r.split == name])

    def question_ids(self) -> list[str]:
        """The table's question ids, sorted."""
        return sorted({r.question_id for r in self.rows})

    def budget_points(self) -> list[tuple[int, int, str]]:
        """The table's budget points (tokens, searches, shape), sorted."""
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
        """Write the rows as JSONL (one row per line)."""
        with path.open("w", encoding="utf-8") as f:
            for row in self.rows:
                f.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> OutcomeTable:
        """Read a JSONL outcome table; a ConfigError naming the line for bad input."""
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
                rows.append(row_from_json(data))
        return cls(rows)


__all__ = ["METRICS", "OutcomeRow", "OutcomeTable", "row_from_json"]
