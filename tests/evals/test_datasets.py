"""Question files as users have them: the project's JSONL and native HotpotQA, MuSiQue and FRAMES files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from leadline.errors import ConfigError
from leadline.evals.datasets import load_questions

SHARED = Path(
    os.environ.get("LEADLINE_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets"
)
"""``../shared/datasets`` from the repository root (LEADLINE_DATASETS overrides: a worktree sits deeper)."""

HOTPOT = [
    {
        "_id": "5a8b57f25542995d1e6f1371",
        "answer": "yes",
        "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
        "supporting_facts": [["Scott Derrickson", 0], ["Ed Wood", 0]],
        "context": [["Scott Derrickson", ["Scott Derrickson is an American director."]]],
        "type": "comparison",
        "level": "hard",
    }
]
MUSIQUE = [
    {
        "id": "2hop__13548_13529",
        "paragraphs": [
            {"idx": 0, "title": "Lionel Messi", "paragraph_text": "...", "is_supporting": True},
            {"idx": 1, "title": "Cats", "paragraph_text": "...", "is_supporting": False},
        ],
        "question": "When was the person who scored the goal born?",
        "question_decomposition": [{"id": 1, "question": "a"}, {"id": 2, "question": "b"}],
        "answer": "24 June 1987",
        "answer_aliases": ["June 24, 1987"],
        "answerable": True,
    },
    {"id": "2hop__x", "question": "Unanswerable?", "answer": "", "answer_aliases": [], "answerable": False},
]
FRAMES_HEADER = ["", "Prompt", "Answer", "wikipedia_link_1", "reasoning_types", "wiki_links"]
FRAMES_ROWS = [
    [
        "0",
        "If my future wife has the same first name as the 15th first lady...",
        "Jane Ballou",
        "x",
        "Multiple constraints",
        "['a']",
    ],
    ["1", 'A prompt with a tab-free "quoted" part\nand a newline', "37", "y", "Numerical reasoning", "['b']"],
]


def _frames(path: Path, delimiter: str) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(FRAMES_HEADER)
        writer.writerows(FRAMES_ROWS)
    return path


def test_project_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"id": "a", "question": "Q?", "answers": ["x", "y"], "supporting_doc_ids": [3]}) + "\n"
    )
    [item] = load_questions(path)
    assert (item.id, item.question, item.answers, item.supporting_doc_ids) == ("a", "Q?", ("x", "y"), ("3",))


def test_hotpotqa_native_json(tmp_path: Path) -> None:
    path = tmp_path / "hotpot_dev_distractor_v1.json"
    path.write_text(json.dumps(HOTPOT))
    [item] = load_questions(path)
    assert item.id == "5a8b57f25542995d1e6f1371" and item.answers == ("yes",)
    assert item.dataset == "hotpotqa" and item.qtype == "comparison"
    assert item.extra == {"supporting_titles": ["Scott Derrickson", "Ed Wood"], "level": "hard"}


def test_musique_native_jsonl_skips_unanswerable(tmp_path: Path) -> None:
    path = tmp_path / "musique_full_v1.0_dev.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MUSIQUE))
    [item] = load_questions(path)
    assert item.answers == ("24 June 1987", "June 24, 1987")
    assert item.hops == 2 and item.dataset == "musique"
    assert item.extra["supporting_titles"] == ["Lionel Messi"]


@pytest.mark.parametrize(("suffix", "delimiter"), [(".tsv", "\t"), (".csv", ",")])
def test_frames_tsv_and_csv(tmp_path: Path, suffix: str, delimiter: str) -> None:
    items = load_questions(_frames(tmp_path / f"test{suffix}", delimiter))
    assert [i.id for i in items] == ["0", "1"]
    assert items[0].answers == ("Jane Ballou",) and items[0].qtype == "Multiple constraints"
    assert items[1].question.endswith("and a newline") and items[1].dataset == "frames"


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("q.jsonl", '{"query": "Q?", "gold": "x"}\n', "expected one of"),
        ("q.jsonl", "not json\n", "not a JSON line"),
        ("q.json", '{"data": []}', "JSON list"),
        ("q.json", '[{"question": "Q?"}]', "lacks 'question' or 'answer'"),
        ("q.tsv", "question\tgold\nQ?\tx\n", "no Prompt and Answer columns (found: question, gold)"),
        ("q.jsonl", '{"id": "a", "question": "Q?", "answers": []}\n', "no gold 'answers'"),
        ("q.jsonl", "\n\n", "holds no questions"),
    ],
)
def test_a_file_of_no_known_format_is_one_clear_error(
    tmp_path: Path, name: str, content: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_questions(path)
    assert needle in caught.value.message


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(ConfigError, match="not a text file"):
        load_questions(path)


def test_questions_without_answers_load_for_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Q?"}\n')
    assert load_questions(path, need_answers=False)[0].answers == ()
    with pytest.raises(ConfigError):
        load_questions(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared datasets are not on this machine")
def test_the_shared_multihop_sets_load() -> None:
    assert len(load_questions(SHARED / "multihop" / "questions.dev.jsonl")) == 406
    assert len(load_questions(SHARED / "multihop" / "questions.train.jsonl")) == 200


def test_pick_questions_takes_a_fixed_sample_in_file_order_then_the_first_n() -> None:
    from leadline.errors import ConfigError
    from leadline.evals.datasets import QAItem, pick_questions

    items = [QAItem(id=f"q{i}", question=f"question {i}?", answers=("a",)) for i in range(50)]
    picked = pick_questions(items, sample=10)
    assert len(picked) == 10 and picked == pick_questions(items, sample=10)  # the same every run
    assert [int(x.id[1:]) for x in picked] == sorted(int(x.id[1:]) for x in picked)  # in file order
    assert picked != items[:10]
    assert pick_questions(items, sample=10, limit=3) == picked[:3]
    assert pick_questions(items, limit=4) == items[:4] and pick_questions(items, sample=99) == items
    with pytest.raises(ConfigError, match="--sample must be at least 1"):
        pick_questions(items, sample=0)


def test_a_larger_sample_holds_every_smaller_one() -> None:
    """A resumable recording grows by raising --sample: the questions already recorded stay in it."""
    import itertools
    import random

    from leadline.evals.datasets import nested_sample

    samples = [nested_sample(406, k) for k in (1, 60, 85, 86, 100, 200, 405)]
    assert [len(s) for s in samples] == [1, 60, 85, 86, 100, 200, 405]
    assert all(a < b for a, b in itertools.pairwise(samples))
    assert nested_sample(406, 406) == nested_sample(406, 500) == set(range(406))
    # the samples recorded before this rule (random.sample's one-at-a-time branch) are unchanged
    for k in (10, 60, 85):
        assert nested_sample(406, k) == set(random.Random(0).sample(range(406), k))
    assert nested_sample(406, 60, seed=1) != nested_sample(406, 60)
