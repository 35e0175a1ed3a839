"""`leadline batch` end to end: a real fake server over HTTP, the real corpus index, the SQL store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadline.cli import app
from leadline.errors import LLMResponseError
from leadline.testing import FakeSearch, ScriptedLLM
from leadline.tools.base import Document

from .conftest import sensible_reply

QUESTIONS = [
    "Which college did the author of The Selfish Gene attend?",
    "Who wrote The Selfish Gene?",
    "What is topic 7 about?",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_batch_writes_reports_and_a_rerun_continues(tmp_path: Path, fake_server: Any, corpus: str) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS[:2]) + "\n\n" + QUESTIONS[2] + "\n")
    out = tmp_path / "reports"
    args = ["batch", str(questions), "--base-url", fake_server.url, "--corpus", corpus, "--out", str(out)]
    code, _, err = run(*args, "--total-budget", "1500,8", "--quiet")
    assert code == 0, err
    assert "3 done, 0 running, 0 failed" in err
    batch_id = err.split("batch ")[1].split(":")[0]
    names = sorted(p.name for p in out.iterdir())
    assert (
        "index.html" in names and "index.md" in names and len([n for n in names if n.endswith(".html")]) == 4
    )
    index = (out / "index.md").read_text()
    assert all(q in index for q in QUESTIONS)
    page = next(out.glob("q*.json"))
    data = json.loads(page.read_text())
    assert data["status"] == "done" and data["result"]["citations"] and data["result"]["allocation"]
    calls = len(fake_server.generation_requests())
    code, status_out, _ = run("batch", "status", batch_id, "--json")
    status = json.loads(status_out)
    assert code == 0 and status["done"] == 3 and status["status"] == "done"
    assert status["spent_tokens"] <= 1500 and status["spent_searches"] <= 8  # the batch total holds
    code, _, err = run(*args, "--total-budget", "1500,8", "--quiet")
    assert code == 0 and "0 new, 3 already done" in err
    assert len(fake_server.generation_requests()) == calls  # nothing was run again


def test_a_failing_question_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Document]
) -> None:
    def respond(messages, params):  # type: ignore[no-untyped-def]
        if "cats" in messages[-1].content.lower():
            raise LLMResponseError("the server refused this prompt", status_code=400)
        return sensible_reply(messages, params)

    monkeypatch.setattr(
        "leadline.cli_batch.worker_clients", lambda: {"llm": ScriptedLLM(respond), "search": FakeSearch(docs)}
    )
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "ok", "question": QUESTIONS[0]},
        {"id": "cats", "question": "Where are cats found?"},
        "oops",
    ]
    questions.write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in rows) + "\n")
    out = tmp_path / "reports"
    code, _, err = run("batch", str(questions), "--out", str(out), "--quiet", "--fixed")
    assert code == 1
    assert "q.jsonl:3: not JSON" in err and "1 done, 0 running, 1 failed" in err
    failed = json.loads((out / "cats.json").read_text())
    assert failed["status"] == "failed" and "refused this prompt" in failed["error"]
    assert "refused this prompt" in (out / "index.md").read_text()


def test_bad_input_and_unreachable_databases_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    code, _, err = run("batch", str(empty))
    assert code == 1 and err.strip().splitlines() == [f"error: {empty} holds no questions"]
    questions = tmp_path / "q.txt"
    questions.write_text("Who wrote Hamlet?\n")
    code, _, err = run("batch", str(questions), "--db", "postgresql+psycopg://postgres@127.0.0.1:9/none")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = run("batch", "status", "no-such-batch")
    assert code == 1 and "no batch 'no-such-batch'" in err
    code, _, err = run("batch", str(questions), "--total-budget", "100")
    assert code == 1 and "TOKENS,SEARCHES" in err
    code, _, err = run("batch", str(questions), "--concurrency", "4", "--quiet")
    assert code == 1 and "need PostgreSQL" in err and len(err.strip().splitlines()) <= 3


@pytest.mark.parametrize("controller", ["--fixed", "--controller=auto"])
def test_a_think_cap_per_question_holds_in_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Document], controller: str
) -> None:
    thinks: list[str] = []

    def respond(messages, params):  # type: ignore[no-untyped-def]
        if '"next_query"' in messages[-1].content:  # the think step's prompt
            thinks.append(messages[-1].content)
        return sensible_reply(messages, params)

    monkeypatch.setattr(
        "leadline.cli_batch.worker_clients", lambda: {"llm": ScriptedLLM(respond), "search": FakeSearch(docs)}
    )
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    args = ["batch", str(questions), "--quiet", controller, "--searches-per-question", "2"]
    args += ["--out", str(tmp_path / "reports")]
    code, _, err = run(*args)
    assert code == 0, err
    assert thinks  # uncapped, these runs think
    thinks.clear()
    code, _, err = run(*args, "--thinks-per-question", "0")
    assert code == 0 and "3 done, 0 running, 0 failed" in err, err
    assert thinks == []


def test_search_cost_is_the_price_of_a_search_in_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: list[Document]
) -> None:
    from leadline.config import Settings
    from leadline.storage.store import SqlRunStore

    monkeypatch.setattr(
        "leadline.cli_batch.worker_clients",
        lambda: {"llm": ScriptedLLM(sensible_reply), "search": FakeSearch(docs)},
    )
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    code, _, err = run(
        "batch", str(questions), "--quiet", "--search-cost", "250", "--out", str(tmp_path / "r")
    )
    assert code == 0 and "3 done, 0 running, 0 failed" in err, err
    store = SqlRunStore.from_url(Settings.from_env().database_url)
    batch_id = err.split("batch ")[1].split(":")[0]
    assert store.get_batch(batch_id).settings["options"]["per_question"]["search_cost_tokens"] == 250
    runs = store.list_runs()
    assert len(runs) == 3 and {r.budget["search_cost_tokens"] for r in runs} == {250}
