"""Outcome tables in the run database: the rows sweeps produce and the budget controller is fitted on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from leadline.storage.access import StoreAccess
from leadline.storage.models import OutcomeRow, utc_now
from leadline.storage.records import OutcomeRecord


class OutcomeMethods(StoreAccess):
    """Store methods for outcome rows (mixed into :class:`~leadline.storage.store.SqlRunStore`)."""

    def add_outcome_rows(self, rows: Iterable[OutcomeRecord]) -> int:
        """Store outcome rows; returns how many."""
        values = [_outcome_values(r) for r in rows]
        if not values:
            return 0
        with self._write() as conn:
            conn.execute(self._insert(OutcomeRow), values)
        return len(values)

    def outcome_rows(self, *, batch_id: str | None = None) -> list[OutcomeRecord]:
        """The stored outcome rows in order, optionally of one batch only."""
        stmt = select(OutcomeRow).order_by(OutcomeRow.id)
        if batch_id is not None:
            stmt = stmt.where(OutcomeRow.batch_id == batch_id)
        with self._read() as conn:
            return [
                OutcomeRecord(
                    question_id=r.question_id,
                    tokens=r.budget_tokens,
                    searches=r.budget_searches,
                    shape=r.shape,
                    question=r.question,
                    answer=r.answer,
                    em=r.score_em,
                    f1=r.score_f1,
                    recall=r.score_recall,
                    spent_prompt_tokens=r.spent_prompt_tokens,
                    spent_tokens=r.spent_tokens,
                    spent_searches=r.spent_searches,
                    spent_fetches=r.spent_fetches,
                    spent_seconds=r.spent_seconds,
                    difficulty=r.difficulty,
                    batch_id=r.batch_id,
                    run_id=r.run_id,
                    **_split_and_features(r.extra),
                )
                for r in conn.execute(stmt)
            ]


def _outcome_values(r: OutcomeRecord) -> dict[str, Any]:
    return {
        "batch_id": r.batch_id,
        "run_id": r.run_id,
        "question_id": r.question_id,
        "question": r.question,
        "budget_tokens": r.tokens,
        "budget_searches": r.searches,
        "shape": r.shape,
        "answer": r.answer,
        "score_em": r.em,
        "score_f1": r.f1,
        "score_recall": r.recall,
        "spent_prompt_tokens": r.spent_prompt_tokens,
        "spent_tokens": r.spent_tokens,
        "spent_searches": r.spent_searches,
        "spent_fetches": r.spent_fetches,
        "spent_seconds": r.spent_seconds,
        "difficulty": r.difficulty,
        "extra": _extra_with_split_and_features(r),
        "created_at": utc_now(),
    }


# ``outcome_rows`` has no split or features columns: they ride in ``extra`` under these keys.
_SPLIT_KEY, _FEATURES_KEY = "_split", "_features"


def _extra_with_split_and_features(r: OutcomeRecord) -> dict[str, Any]:
    extra = dict(r.extra)
    if r.split != "dev":
        extra[_SPLIT_KEY] = r.split
    if r.features:
        extra[_FEATURES_KEY] = dict(r.features)
    return extra


def _split_and_features(stored: dict[str, Any]) -> dict[str, Any]:
    extra = dict(stored or {})
    split = str(extra.pop(_SPLIT_KEY, "dev"))
    features = {str(k): float(v) for k, v in dict(extra.pop(_FEATURES_KEY, {})).items()}
    return {"split": split, "features": features, "extra": extra}


__all__ = ["OutcomeMethods"]
