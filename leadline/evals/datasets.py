"""Question sets as users have them: the project's JSONL and the native files of HotpotQA, MuSiQue, FRAMES.

:func:`load_questions` reads any of them into :class:`QAItem` rows (question, gold answers, what is known
of the supporting passages), telling the format from the file's suffix and its fields:

- the project's JSONL (``../shared/datasets/multihop``): ``{id, question, answers[], supporting_doc_ids[]}``;
- HotpotQA JSON (``hotpot_dev_distractor_v1.json`` and the like): a list of
  ``{_id, question, answer, type, level, supporting_facts, context}``;
- MuSiQue JSONL (``musique_ans_v1.0_dev.jsonl``, ``musique_full_...``): ``{id, question, answer,
  answer_aliases, paragraphs, question_decomposition, answerable}``; unanswerable rows are skipped;
- FRAMES CSV or TSV (``test.tsv`` of google/frames-benchmark): columns ``Prompt`` and ``Answer`` (and
  ``reasoning_types``, ``wiki_links``), one question per row.

A file that is none of these is a :class:`~leadline.errors.ConfigError` naming the fields each format
needs. Native files name their supporting passages by title, not by the ids of a local corpus, so their
rows carry the titles in ``extra["supporting_titles"]`` and leave ``supporting_doc_ids`` empty.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.errors import ConfigError

logger = logging.getLogger(__name__)

EXPECTED = (
    "expected one of: the project's JSONL {id, question, answers}; HotpotQA JSON (a list of "
    "{_id, question, answer}); MuSiQue JSONL {id, question, answer, answer_aliases}; FRAMES CSV/TSV with "
    "Prompt and Answer columns"
)
"""The error text's list of what each format needs."""


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


def load_questions(path: str | Path, *, need_answers: bool = True) -> list[QAItem]:
    """Read a question file in any format this module knows (see the module docstring).

    With ``need_answers`` (for tuning and evaluation) every row must carry a gold answer; without it
    (a batch) a row needs only its question.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"question file not found: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            items = _frames(p, "\t" if suffix == ".tsv" else ",", need_answers)
        elif suffix == ".json":
            items = _hotpot(p, need_answers)
        else:
            items = _jsonl(p, need_answers)
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file; {EXPECTED}") from None
    if not items:
        raise ConfigError(f"{p} holds no questions")
    return items


def _jsonl(p: Path, need_answers: bool) -> list[QAItem]:
    items: list[QAItem] = []
    skipped = 0
    for lineno, row in _json_lines(p):
        if "answers" in row or ("answer" not in row and not need_answers):
            items.append(_project_row(p, lineno, row, need_answers))
        elif "answer" in row and "question" in row:
            if row.get("answerable") is False:
                skipped += 1
                continue
            items.append(_musique_row(p, lineno, row))
        else:
            raise ConfigError(f"{p}:{lineno}: a row without 'question' and 'answers'; {EXPECTED}")
    if skipped:
        logger.warning("%s: skipped %d unanswerable MuSiQue questions", p, skipped)
    return items


def _json_lines(p: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{p}:{lineno}: not a JSON line ({exc.msg}); {EXPECTED}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{p}:{lineno}: a JSON line must be an object; {EXPECTED}")
            yield lineno, row


def _text(p: Path, lineno: int, row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{p}:{lineno}: '{key}' must be a non-empty string; {EXPECTED}")
    return value.strip()


def _project_row(p: Path, lineno: int, row: Mapping[str, Any], need_answers: bool) -> QAItem:
    answers = row.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ConfigError(f"{p}:{lineno}: 'answers' must be a list of strings; {EXPECTED}")
    if need_answers and not answers:
        raise ConfigError(f"{p}:{lineno}: no gold 'answers' to score against")
    return QAItem(
        id=str(row.get("id", lineno)),
        question=_text(p, lineno, row, "question"),
        answers=tuple(answers),
        supporting_doc_ids=tuple(str(d) for d in row.get("supporting_doc_ids") or ()),
        dataset=str(row.get("dataset", "")),
        qtype=row.get("type"),
        hops=row.get("hops"),
        extra={k: v for k, v in row.items() if k in ("level", "decomposition")},
    )


def _musique_row(p: Path, lineno: int, row: Mapping[str, Any]) -> QAItem:
    aliases = row.get("answer_aliases") or []
    answers = [_text(p, lineno, row, "answer"), *(str(a) for a in aliases if str(a).strip())]
    paragraphs = row.get("paragraphs") or []
    supporting = [
        str(x.get("title", "")) for x in paragraphs if isinstance(x, dict) and x.get("is_supporting")
    ]
    decomposition = row.get("question_decomposition") or []
    return QAItem(
        id=str(row.get("id", lineno)),
        question=_text(p, lineno, row, "question"),
        answers=tuple(dict.fromkeys(answers)),
        dataset="musique",
        hops=len(decomposition) or None,
        extra={"supporting_titles": supporting, "decomposition": decomposition},
    )


def _hotpot(p: Path, need_answers: bool) -> list[QAItem]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: not JSON ({exc.msg} at line {exc.lineno}); {EXPECTED}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{p}: a HotpotQA file is a JSON list of questions; {EXPECTED}")
    items = []
    for i, row in enumerate(data, 1):
        where = f"question {i}"
        if not isinstance(row, dict) or "question" not in row or ("answer" not in row and need_answers):
            raise ConfigError(f"{p}: {where} lacks 'question' or 'answer'; {EXPECTED}")
        facts = row.get("supporting_facts") or []
        titles = list(dict.fromkeys(str(f[0]) for f in facts if isinstance(f, list | tuple) and f))
        answer = str(row.get("answer", "")).strip()
        question = str(row["question"]).strip()
        if not question or (need_answers and not answer):
            raise ConfigError(f"{p}: {where} has an empty question or answer")
        items.append(
            QAItem(
                id=str(row.get("_id", row.get("id", i))),
                question=question,
                answers=(answer,) if answer else (),
                dataset="hotpotqa",
                qtype=row.get("type"),
                hops=2,
                extra={"supporting_titles": titles, **({"level": row["level"]} if "level" in row else {})},
            )
        )
    return items


def _frames(p: Path, delimiter: str, need_answers: bool) -> list[QAItem]:
    with p.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        if "prompt" not in columns or (need_answers and "answer" not in columns):
            found = ", ".join(c for c in reader.fieldnames or [] if c) or "none"
            raise ConfigError(f"{p}: no Prompt and Answer columns (found: {found}); {EXPECTED}")
        index = columns.get("") or columns.get("unnamed: 0") or columns.get("id")
        items = []
        for rownum, row in enumerate(reader, 2):  # line 1 is the header
            question = (row.get(columns["prompt"]) or "").strip()
            answer = (row.get(columns.get("answer", "")) or "").strip()
            if not question or (need_answers and not answer):
                raise ConfigError(f"{p}:{rownum}: an empty Prompt or Answer")
            extra: dict[str, Any] = {
                k: row[columns[k]] for k in ("reasoning_types", "wiki_links") if k in columns
            }
            items.append(
                QAItem(
                    id=str(row.get(index) or rownum - 2) if index else str(rownum - 2),
                    question=question,
                    answers=(answer,) if answer else (),
                    dataset="frames",
                    qtype=extra.get("reasoning_types"),
                    extra=extra,
                )
            )
    return items


def sample(items: list[QAItem], n: int, *, seed: int = 0) -> list[QAItem]:
    """A fixed random sample (the same for the same seed and file)."""
    if n >= len(items):
        return list(items)
    return random.Random(seed).sample(items, n)


def pick_questions(
    items: list[QAItem], *, limit: int | None = None, sample: int | None = None
) -> list[QAItem]:
    """The questions a command runs: a fixed random sample of ``sample`` (seed 0, in file order), then the
    first ``limit`` of those. A sample keeps a file whose rows are grouped by source (MuSiQue first, say)
    from giving one source only, and a larger sample holds every smaller one (see ``nested_sample``), so
    a resumable recording can grow."""
    if sample is not None:
        if sample < 1:
            raise ConfigError(f"--sample must be at least 1, got {sample}")
        chosen = nested_sample(len(items), sample)
        items = [x for i, x in enumerate(items) if i in chosen]
    return items[:limit]


def nested_sample(n: int, k: int, *, seed: int = 0) -> set[int]:
    """``k`` of the indices ``0..n-1``, drawn one at a time (a repeat is drawn again), so the sample of
    ``k`` is the first ``k`` draws and holds the sample of every smaller ``k``.

    Why not ``random.sample``: it switches between two algorithms as ``k`` grows against ``n`` (for 406
    items, at ``k`` = 86), and the two draw different items, so ``--sample 100`` did not hold the
    ``--sample 60`` already recorded. This is the algorithm ``random.sample`` uses for small ``k``: the
    same seed gives the same indices as ``random.Random(seed).sample(range(n), k)`` wherever that one
    draws one at a time (for 406 items, every ``k`` up to 85)."""
    if k >= n:
        return set(range(n))
    rng = random.Random(seed)
    chosen: set[int] = set()
    while len(chosen) < k:
        chosen.add(rng.randrange(n))
    return chosen
