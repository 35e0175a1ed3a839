import json
from pathlib import Path

import pytest

from leadline.budgets.difficulty import TEXT_FEATURES, text_features
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeRow, OutcomeTable


def _row(qid: str, t: int, s: int, em: float, split: str = "dev") -> OutcomeRow:
    question = "Who wrote Hamlet?"
    return OutcomeRow(
        question_id=qid,
        split=split,
        question=question,
        tokens=t,
        searches=s,
        em=em,
        f1=em,
        spent_tokens=t // 2,
        spent_searches=s,
        features={**text_features(question), "probe": 0.5},
    )


def test_jsonl_round_trip(tmp_path: Path) -> None:
    table = OutcomeTable([_row("a", 128, 1, 0.0), _row("a", 256, 2, 1.0), _row("b", 128, 1, 1.0, "train")])
    path = tmp_path / "t.jsonl"
    table.write_jsonl(path)
    again = OutcomeTable.read_jsonl(path)
    assert again.rows == table.rows
    assert again.budget_points() == [(128, 1, "sequential"), (256, 2, "sequential")]
    assert len(again.split("train")) == 1


def test_flat_feature_columns_and_missing_features_are_read(tmp_path: Path) -> None:
    path = tmp_path / "flat.jsonl"
    flat = {
        "question_id": "q",
        "split": "dev",
        "question": "How many moons has Mars?",
        "tokens": 64,
        "searches": 1,
        "em": 1,
        "f1": 1.0,
        "recall": 0.5,
        "spent_tokens": 40,
        "spent_searches": 1,
        "length": 2.5,
        "multihop": 0.0,
    }
    bare = dict(flat, question_id="r")
    del bare["length"], bare["multihop"]
    path.write_text(json.dumps(flat) + "\n\n" + json.dumps(bare) + "\n")
    rows = OutcomeTable.read_jsonl(path).rows
    assert rows[0].features["length"] == 2.5
    assert set(TEXT_FEATURES) <= set(rows[1].features)  # computed from the question text
    assert rows[1].features["numeric"] == 1.0


def test_bad_rows_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        OutcomeTable.read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"question_id": "x"}\n')
    with pytest.raises(ConfigError):
        OutcomeTable.read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(ConfigError):
        _row("x", -1, 0, 0.0)
    with pytest.raises(ConfigError):
        _row("x", 1, 0, float("nan"))


def test_complete_keeps_questions_with_every_point() -> None:
    table = OutcomeTable([_row("a", 128, 1, 0.0), _row("a", 256, 2, 1.0), _row("b", 128, 1, 1.0)])
    assert table.complete().question_ids() == ["a"]
