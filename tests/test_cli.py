"""The CLI's edges: one-line errors with non-zero exit codes, JSON on stdout only, listings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadline.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("question", ["", "   "])
def test_blank_question_is_a_one_line_error(question: str) -> None:
    code, out, err = run("ask", question)
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == ["error: the question is empty"]


@pytest.mark.parametrize(
    "flag", [["--budget-tokens", "0"], ["--budget-searches", "-1"], ["--budget-tokens", "-3"]]
)
def test_non_positive_budget_is_a_one_line_error(flag: list[str]) -> None:
    code, _, err = run("ask", "Who wrote Hamlet?", *flag)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "must be positive" in err


def test_unknown_model_is_a_one_line_error() -> None:
    code, _, err = run("ask", "Who wrote Hamlet?", "--model", "gpt-17")
    assert code == 1
    assert "unknown model 'gpt-17'" in err and "Traceback" not in err


def test_unknown_corpus_is_a_one_line_error() -> None:
    code, _, err = run("ask", "Who wrote Hamlet?", "--corpus", "nosuchcorpus")
    assert code == 1
    assert "nosuchcorpus" in err and "Traceback" not in err


def test_verbose_shows_the_traceback() -> None:
    code, _, err = run("-v", "ask", "Who wrote Hamlet?", "--model", "gpt-17")
    assert code == 1
    assert "Traceback" in err


def test_unreachable_llm_server_is_a_one_line_error_and_leaves_no_run(leadline_home: Path) -> None:
    code, _, err = run(
        "ask", "Who wrote Hamlet?", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--corpus", "demo"
    )
    assert code == 1
    assert "127.0.0.1:9" in err and "Traceback" not in err
    code, out, _ = run("runs", "list")
    assert code == 0 and "Hamlet" not in out


def test_models_lists_the_packaged_models() -> None:
    code, out, _ = run("models")
    assert code == 0
    assert "qwen2.5-1.5b-instruct (default)" in out and "smollm2-135m-instruct" in out


def test_index_builds_a_named_corpus_and_ask_refuses_a_corrupt_one(
    tmp_path: Path, leadline_home: Path
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "title": "Alpha", "text": "Alpha is the first letter."}) + "\n")
    code, _, err = run("index", str(corpus), "--name", "tiny")
    assert code == 0 and "1 passages" in err
    for f in list((leadline_home / "indexes" / "tiny").rglob("*")):
        if f.is_file() and f.suffix != ".json":
            # a new inode, as a disk or a copy would make: rewriting in place pulls pages from under any
            # memory map of the file still open in this process, and touching one is a bus error (SIGBUS)
            damaged = f.with_name(f.name + ".damaged")
            damaged.write_bytes(b"garbage")
            os.replace(damaged, f)
    code, _, err = run("ask", "What is alpha?", "--corpus", "tiny")
    assert code == 1 and "Traceback" not in err and "tiny" in err


def test_resume_of_a_finished_run_prints_its_answer_and_unknown_runs_are_one_line_errors(
    leadline_home: Path,
) -> None:
    from leadline import Budget, Researcher, Settings
    from leadline.testing import FakeSearch, ScriptedLLM
    from leadline.tools.base import Document
    from leadline.wiring import make_store

    settings = Settings()
    docs = [Document(doc_id="d1", title="Hamlet", text="Hamlet is a tragedy by William Shakespeare.")]
    llm = ScriptedLLM(
        lambda m, p: json.dumps({"answer": "William Shakespeare", "sources": [1], "queries": []})
    )
    with Researcher(settings, llm=llm, search=FakeSearch(docs), store=make_store(settings)) as r:
        first = r.research("Who wrote Hamlet?", budget=Budget(tokens=200, searches=1))
    run_id = first.run_id
    code, out, _ = run("resume", run_id, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["answer"] == "William Shakespeare" and data["citations"][0]["doc_id"] == "d1"
    assert data["spend"]["searches"] == 1
    # what the record does not keep comes back from the run's last checkpoint, as first reported
    assert data["confidence_basis"] == first.confidence_basis != ""
    assert data["unsure"] == first.unsure and data["trace"] == first.trace and data["trace"]
    code, _, err = run("resume", "no-such-run")
    assert code == 1 and "no-such-run" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run("runs", "show", run_id)
    assert code == 0 and "William Shakespeare" in out


def test_a_missing_or_misused_tuned_controller_is_a_one_line_error(tmp_path: Path) -> None:
    code, _, err = run("ask", "Who wrote Hamlet?", "--tuned", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read tuned controller" in err and "Traceback" not in err
    questions = tmp_path / "q.txt"
    questions.write_text("Who wrote Hamlet?\n")
    code, _, err = run("batch", str(questions), "--fixed", "--tuned", str(tmp_path / "t.json"))
    assert code == 1 and "--tuned needs the adaptive controller" in err


def _result(**kw: object) -> object:
    from leadline.budgets.ledger import Spend
    from leadline.result import Citation, ResearchResult

    citation = Citation(
        n=2,
        doc_id="d2",
        title="Richard Dawkins",
        passage="Richard Dawkins is a biologist. He studied at Balliol College, Oxford.",
        support="He studied at Balliol College, Oxford.",
    )
    values: dict = dict(
        run_id="r1",
        question="Which college did Dawkins attend?",
        answer="Balliol College",
        citations=[citation],
        spend=Spend(),
        confidence_basis="the answer appears in source [2]",
    )
    values.update(kw)
    return ResearchResult(**values)


def test_the_answer_shows_confidence_and_each_citations_supporting_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from leadline.cli import _print_result

    _print_result(_result(), as_json=False)
    out = capsys.readouterr().out
    assert "Answer: Balliol College" in out
    assert "Confidence: the answer appears in source [2]" in out
    assert "[2] Richard Dawkins (d2)" in out and "He studied at Balliol College, Oxford." in out
    _print_result(
        _result(unsure=True, confidence_basis="the answer does not appear in the sources read"), as_json=False
    )
    out = capsys.readouterr().out
    assert "Best guess: Balliol College" in out and "Unsure" in out
    _print_result(_result(unsure=True), as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert (
        data["unsure"] is True and data["citations"][0]["support"] == "He studied at Balliol College, Oxford."
    )


def test_a_piped_report_is_raw_markdown_and_out_writes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from leadline.cli import _print_result

    report = (
        "# Q\n\n## Summary\n\n**Answer:** Balliol College [2]\n\n## Sources\n\n[2] Richard Dawkins (d2)\n"
    )
    target = tmp_path / "report.md"
    _print_result(_result(report=report), as_json=False, out_file=target)
    assert capsys.readouterr().out == report  # stdout is not a terminal here: no wrapping, no styling
    assert target.read_text() == report


@pytest.mark.parametrize(("flags", "price"), [([], None), (["--search-cost", "500"], 500.0)])
def test_search_cost_sets_the_price_the_controller_puts_on_a_search(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], price: float | None
) -> None:
    from leadline import Researcher, Settings
    from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
    from leadline.tools.base import Document

    store = MemoryRunStore()
    docs = [Document(doc_id="d", title="Hamlet", text="Hamlet is a tragedy by William Shakespeare.")]

    def reply(messages: object, params: object) -> str:
        return json.dumps({"answer": "William Shakespeare", "sources": [1], "queries": ["Hamlet"]})

    monkeypatch.setattr(
        "leadline.api.Researcher",
        lambda settings, **kw: Researcher(
            Settings(), llm=ScriptedLLM(reply), search=FakeSearch(docs), store=store, **kw
        ),
    )
    code, out, err = run("ask", "Who wrote Hamlet?", "--json", "--controller", "fixed", *flags)
    assert code == 0, err
    assert json.loads(out)["answer"] == "William Shakespeare"
    (record,) = store.list_runs()
    # unset, the run measures λ on its engine (the scripted one takes no time: none is measured)
    assert record.budget["search_cost_tokens"] == price


def test_a_negative_search_cost_is_a_one_line_error() -> None:
    code, _, err = run("ask", "Who wrote Hamlet?", "--search-cost", "-1")
    assert code == 1
    assert err.strip().splitlines() == ["error: budget search_cost_tokens must be zero or more, got -1.0"]
