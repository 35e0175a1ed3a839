"""Question sets for evaluation: JSONL rows with a question, gold answers and gold passage ids."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class QAItem:
    """One question with its gold answers (and supporting documents, when the dataset has them)."""

    id: str
    question: str
    answers: tuple[str, ...]
    supporting_doc_ids: tuple[str, ...] = ()
    dataset: str = ""
    qtype: str | None = None
    hops: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_questions(path: str | Path) -> list[QAItem]:
    """Read a question file (the multihop format of ../shared/datasets)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"question file not found: {p}")
    items = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(
                    QAItem(
                        id=str(row["id"]),
                        question=row["question"],
                        answers=tuple(row["answers"]),
                        supporting_doc_ids=tuple(row.get("supporting_doc_ids") or ()),
                        dataset=row.get("dataset", ""),
                        qtype=row.get("type"),
                        hops=row.get("hops"),
                        extra={k: v for k, v in row.items() if k in ("level", "decomposition")},
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ConfigError(f"{p}:{lineno}: not a question row ({exc})") from exc
    return items


def sample(items: list[QAItem], n: int, *, seed: int = 0) -> list[QAItem]:
    """A fixed random sample (the same for the same seed and file)."""
    if n >= len(items):
        return list(items)
    return random.Random(seed).sample(items, n)
