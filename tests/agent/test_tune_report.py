"""`leadline tune` on a native HotpotQA file with --report; an unwritable report dir fails first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadline import Researcher, Settings
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import QUESTION, sensible

POINTS = "96x1,200x1,200x2,400x3"
QUESTIONS = [
    QUESTION,
    "Who wrote The Selfish Gene?",
    "Which college did Dawkins attend?",
    "Where did the author of The Selfish Gene study?",
    "Which Oxford college did Richard Dawkins go to?",
    "What college is linked to The Selfish Gene's author?",
]


def _hotpot(path: Path, offset: int) -> Path:
    rows = [
        {
            "_id": f"h{offset + i}",
            "question": q,
            "answer": "Balliol College",
            "type": "bridge",
            "level": "medium",
            "supporting_facts": [["Richard Dawkins", 0]],
            "context": [],
        }
        for i, q in enumerate(QUESTIONS)
    ]
    path.write_text(json.dumps(rows))
    return path


def test_tune_reads_hotpotqa_and_writes_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Document]
) -> None:
    from leadline import cli

    monkeypatch.setattr(
        "leadline.api.Researcher",
        lambda settings, **kw: Researcher(
            Settings(), llm=ScriptedLLM(sensible), search=FakeSearch(docs), store=MemoryRunStore()
        ),
    )
    out = tmp_path / "table.jsonl"
    for split, offset in (("train", 0), ("dev", 100)):
        qfile = _hotpot(tmp_path / f"hotpot_{split}.json", offset)
        result = CliRunner().invoke(
            cli.app,
            ["tune", str(qfile), "--points", POINTS, "--out", str(out), "--split", split, "-q"],
        )
        assert result.exit_code == 0, result.stderr
        assert f"{len(QUESTIONS)} questions x 4 budget points" in result.stderr
    table = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(table) == 2 * 4 * len(QUESTIONS)
    assert {r["question_id"] for r in table} >= {"h0", "h100"}

    report = tmp_path / "report"
    result = CliRunner().invoke(cli.app, ["tune", "--no-run", "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.stderr
    assert "recommended fixed budget" in result.stderr
    assert {"report.md", "report.html", "tuned.json", "quality_vs_compute.png"} <= {
        p.name for p in report.iterdir()
    }
    # the recommended settings are a file `ask` takes
    result = CliRunner().invoke(cli.app, ["ask", QUESTION, "--tuned", str(report / "tuned.json"), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["answer"] == "Balliol College"


def test_an_unwritable_report_dir_fails_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadline import cli

    def no_runs(*a: object, **k: object) -> None:
        raise AssertionError("the sweep must not start")

    monkeypatch.setattr("leadline.api.Researcher", no_runs)
    qfile = _hotpot(tmp_path / "hotpot.json", 0)
    out = tmp_path / "table.jsonl"
    bad = tmp_path / "no-such-dir" / "report"
    result = CliRunner().invoke(cli.app, ["tune", str(qfile), "--out", str(out), "--report", str(bad)])
    assert result.exit_code == 1
    text = "".join(result.stderr.splitlines())  # rich wraps at the test terminal's width
    assert text == f"error: cannot write the report: {bad.parent} does not exist"
    assert not out.exists()
    result = CliRunner().invoke(cli.app, ["tune", "--out", str(out)])
    assert result.exit_code == 1 and "give a questions file, or --no-run" in result.stderr
    result = CliRunner().invoke(cli.app, ["tune", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert result.exit_code == 1 and "question file not found" in result.stderr
