"""Batch inputs: three formats, bad lines reported with their numbers while the rest is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadline.batch.inputs import question_id, read_questions
from leadline.errors import ConfigError


def test_text_lines_get_ids_from_their_text_and_repeats_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("Who wrote Hamlet?\n\n  Who   wrote Hamlet? \nWhere is Oxford?\n")
    data = read_questions(path)
    assert [q.question for q in data.questions] == ["Who wrote Hamlet?", "Where is Oxford?"]
    assert data.questions[0].id == question_id("who wrote hamlet?")
    assert [(p.line, "duplicate" in p.message) for p in data.problems] == [(3, True)]


def test_jsonl_keeps_extra_fields_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    lines = [
        json.dumps({"id": "a", "question": "Who wrote Hamlet?", "answers": ["Shakespeare"]}),
        "{not json",
        json.dumps({"id": "b"}),
        json.dumps({"id": "a", "question": "Again?"}),
        json.dumps({"id": 7, "question": "x" * 5000}),
        json.dumps({"question": "Where is Oxford?"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    data = read_questions(path)
    assert [(q.id, q.line) for q in data.questions] == [("a", 1), (question_id("Where is Oxford?"), 6)]
    assert data.questions[0].extra == {"answers": ["Shakespeare"]}
    assert [p.line for p in data.problems] == [2, 3, 4, 5]
    assert "not JSON" in data.problems[0].message and "'question'" in data.problems[1].message
    assert "longer than" in data.problems[3].message


def test_csv_needs_a_question_column(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        'id,question,topic\n1,"Who wrote Hamlet, the play?",lit\n2,,x\n3,Where is Oxford?,geo,extra\n'
    )
    data = read_questions(path)
    assert [(q.id, q.question, q.extra) for q in data.questions] == [
        ("1", "Who wrote Hamlet, the play?", {"topic": "lit"})
    ]
    assert [(p.line, p.message) for p in data.problems] == [
        (3, "the question is empty"),
        (4, "more fields than the header names"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,hello\n")
    with pytest.raises(ConfigError, match="'question'"):
        read_questions(bad)


@pytest.mark.parametrize("content", ["", "\n\n", "{broken\n"])
def test_a_file_without_questions_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match="holds no questions"):
        read_questions(path)
    with pytest.raises(ConfigError, match="not found"):
        read_questions(tmp_path / "missing.txt")
