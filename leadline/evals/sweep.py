"""Outcome tables from real runs: each question at each budget point, scored, with its real spend.

This is what the controller learns from and what policies are compared on (``evals.policies``). Rows
are appended to a JSONL file as they finish, so a long sweep that is interrupted continues where it
stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from leadline.api import Researcher
from leadline.budgets.ledger import Budget
from leadline.errors import ConfigError
from leadline.evals.datasets import QAItem
from leadline.evals.metrics import exact_match, passage_recall, token_f1
from leadline.evals.outcomes import OutcomeRow, row_from_json

BudgetPoint = tuple[int, int]


def parse_points(spec: str) -> list[BudgetPoint]:
    """``"128x1,256x2"`` → ``[(128, 1), (256, 2)]`` (tokens x searches)."""
    points = []
    for part in spec.split(","):
        try:
            tokens, searches = part.lower().split("x")
            points.append((int(tokens), int(searches)))
        except ValueError as exc:
            raise ConfigError(f"budget point {part!r} is not TOKENSxSEARCHES, e.g. 256x2") from exc
    if not points:
        raise ConfigError("no budget points given")
    return points


def done_rows(path: Path) -> dict[tuple[str, int, int], OutcomeRow]:
    """Rows already in an outcome file, by (question id, tokens, searches)."""
    rows: dict[tuple[str, int, int], OutcomeRow] = {}
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        if line.strip():
            row = row_from_json(json.loads(line))
            rows[(row.question_id, row.tokens, row.searches)] = row
    return rows


async def run_point(researcher: Researcher, item: QAItem, point: BudgetPoint, *, split: str) -> OutcomeRow:
    """Run one question at one budget point and score it."""
    tokens, searches = point
    result = await researcher.aresearch(item.question, budget=Budget(tokens=tokens, searches=searches))
    steps = researcher.store.list_steps(result.run_id)
    retrieved = [r["doc_id"] for s in steps if s.kind == "search" for r in s.response.get("results", [])]
    return OutcomeRow(
        question_id=item.id,
        split=split,
        question=item.question,
        tokens=tokens,
        searches=searches,
        shape=str(result.allocation.get("shape", "sequential")),
        answer=result.answer,
        em=exact_match(result.answer, item.answers),
        f1=token_f1(result.answer, item.answers),
        recall=passage_recall(retrieved, item.supporting_doc_ids),
        spent_tokens=result.spend.tokens,
        spent_searches=result.spend.searches,
    )


async def run_sweep(
    researcher: Researcher,
    items: Sequence[QAItem],
    points: Sequence[BudgetPoint],
    out: Path,
    *,
    split: str,
    on_row: Callable[[OutcomeRow], None] | None = None,
) -> list[OutcomeRow]:
    """Every item at every point, appended to ``out``; rows already there are kept, not rerun."""
    done = done_rows(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        for point in points:
            key = (item.id, *point)
            if key in done:
                rows.append(done[key])
                continue
            row = await run_point(researcher, item, point, split=split)
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row.to_json()) + "\n")
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
