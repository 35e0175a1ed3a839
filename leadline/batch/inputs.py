"""Reading a batch's questions from .txt, .jsonl or .csv, reporting bad lines instead of stopping.

A batch of thousands of questions should not fail on its 900th line: a malformed line, a blank or overlong
question, or a repeated id is reported with its line number and left out, and the rest is run. Only a
file with no usable question at all is an error. Ids are the file's own (``id`` in JSONL and CSV) or,
for plain text, derived from the question's text, so a rerun of an edited file still recognises the
questions it has finished.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.errors import ConfigError, LeadlineError

MAX_ID_CHARS = 200


@dataclass(frozen=True)
class BatchQuestion:
    """One question of a batch input: its id, text, line and the input's other fields."""

    id: str
    question: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InputProblem:
    """A line of the input that was left out, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class BatchInput:
    """The usable questions of an input file and the problems found in the rest."""

    path: Path
    questions: list[BatchQuestion]
    problems: list[InputProblem]


def question_id(text: str) -> str:
    """The id of a question given without one: a digest of its normalised text."""
    return "q" + hashlib.sha256(" ".join(text.split()).lower().encode()).hexdigest()[:12]


def read_questions(path: Path) -> BatchInput:
    """Read ``path`` (.jsonl, .csv, anything else a question a line); see the module doc for bad input."""
    if not path.is_file():
        raise ConfigError(f"question file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a UTF-8 text file (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if "\x00" in text:
        raise ConfigError(f"{path} is a binary file, not questions")
    suffix = path.suffix.lower()
    rows = _jsonl(text) if suffix == ".jsonl" else _csv(text, path) if suffix == ".csv" else _lines(text)
    questions: list[BatchQuestion] = []
    problems: list[InputProblem] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        if isinstance(raw, InputProblem):
            problems.append(raw)
            continue
        qid, question, extra = raw
        try:
            question = _validate(question)
        except LeadlineError as exc:
            problems.append(InputProblem(line, exc.message))
            continue
        qid = qid if qid is not None else question_id(question)
        if not qid or len(qid) > MAX_ID_CHARS:
            problems.append(InputProblem(line, f"the id must be 1 to {MAX_ID_CHARS} characters"))
            continue
        if qid in seen:
            problems.append(InputProblem(line, f"duplicate id {qid!r} (first on line {seen[qid]}); left out"))
            continue
        seen[qid] = line
        questions.append(BatchQuestion(qid, question, line, extra))
    if not questions:
        first = f"{path.name}:{problems[0].line}: {problems[0].message}" if problems else ""
        detail = f" ({len(problems)} bad lines; the first: {first})" if problems else ""
        raise ConfigError(f"{path} holds no questions{detail}")
    return BatchInput(path, questions, problems)


_Row = tuple[int, "tuple[str | None, object, dict[str, Any]] | InputProblem"]


def _validate(question: object) -> str:
    from leadline.api import validate_question

    return validate_question(question)


def _lines(text: str) -> list[_Row]:
    return [(n, (None, line, {})) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _jsonl(text: str) -> list[_Row]:
    rows: list[_Row] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((n, InputProblem(n, f"not JSON ({exc.msg})")))
            continue
        if not isinstance(data, dict) or "question" not in data:
            rows.append((n, InputProblem(n, "expected a JSON object with a 'question'")))
            continue
        qid = data.get("id")
        extra = {k: v for k, v in data.items() if k not in ("id", "question")}
        rows.append((n, (None if qid is None else str(qid), data["question"], extra)))
    return rows


def _csv(text: str, path: Path) -> list[_Row]:
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "question" not in fields:
        raise ConfigError(f"{path}: the first row must name the columns, one of them 'question'")
    rows: list[_Row] = []
    try:
        for record in reader:
            n = reader.line_num
            if None in record:
                rows.append((n, InputProblem(n, "more fields than the header names")))
                continue
            data = {k.strip().lower(): v for k, v in record.items() if k is not None}
            if not any((v or "").strip() for v in data.values()):
                continue
            qid = (data.get("id") or "").strip() or None
            extra = {k: v for k, v in data.items() if k not in ("id", "question")}
            rows.append((n, (qid, data.get("question") or "", extra)))
    except csv.Error as exc:
        rows.append(
            (reader.line_num, InputProblem(reader.line_num, f"malformed CSV ({exc}); the rest skipped"))
        )
    return rows


__all__ = ["BatchInput", "BatchQuestion", "InputProblem", "question_id", "read_questions"]
