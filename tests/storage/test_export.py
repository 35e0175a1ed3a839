"""Run exports: complete in each format, and HTML that cannot run or load anything from the web."""

from __future__ import annotations

import json

import pytest

from leadline.errors import ConfigError, RunNotFoundError
from leadline.storage.base import SourceRecord, StepRecord
from leadline.storage.export import export_run
from leadline.storage.store import SqlRunStore

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/t.png">'


@pytest.fixture
def run_id(sqlite_url: str) -> str:
    with SqlRunStore.from_url(sqlite_url) as store:
        run_id = store.create_run(
            question=f"Who wrote it? {HOSTILE}",
            mode="report",
            model="fake",
            budget={"tokens": 50},
            settings={},
        )
        store.record_step(
            StepRecord(
                run_id=run_id,
                key="search:0",
                kind="search",
                node="search",
                request={"query": "q"},
                searches=1,
            )
        )
        store.record_step(
            StepRecord(
                run_id=run_id,
                key="answer:0",
                kind="llm",
                node="answer",
                completion_tokens=12,
                prompt_tokens=40,
            )
        )
        store.record_source(SourceRecord(run_id=run_id, doc_id="d1", title="Dawkins", text="Balliol College"))
        store.finish_run(
            run_id,
            status="done",
            answer=f"Oxford {HOSTILE}",
            citations=[
                {
                    "doc_id": "d1",
                    "title": f"Dawkins {HOSTILE}",
                    "url": "https://en.wikipedia.org/wiki/Dawkins",
                },
                {"doc_id": "d2", "title": "Bad link", "url": "javascript:alert(1)"},
            ],
            report=f"# Report\n\n![img](https://evil.example/x.png) {HOSTILE}",
        )
        return run_id


def _export(sqlite_url: str, run_id: str, fmt: str) -> str:
    with SqlRunStore.from_url(sqlite_url) as store:
        return export_run(store, run_id, fmt)


def test_json_export_holds_the_whole_record(sqlite_url: str, run_id: str) -> None:
    doc = json.loads(_export(sqlite_url, run_id, "json"))
    assert doc["run"]["run_id"] == run_id and doc["run"]["status"] == "done"
    assert [s["key"] for s in doc["steps"]] == ["search:0", "answer:0"]
    assert doc["ledger"]["searches"] == 1 and doc["ledger"]["completion_tokens"] == 12
    assert doc["sources"][0]["text"] == "Balliol College"
    assert len(doc["run"]["citations"]) == 2


def test_markdown_export(sqlite_url: str, run_id: str) -> None:
    md = _export(sqlite_url, run_id, "md")
    assert md.startswith(f"# Run {run_id}")
    assert "## Answer" in md and "Oxford" in md
    assert "1. [Dawkins" in md and "(https://en.wikipedia.org/wiki/Dawkins)" in md
    assert "| 2 | answer | llm | `answer:0` | 40 | 12 | 0 | 0 |" in md


def test_html_export_is_escaped_and_loads_nothing(sqlite_url: str, run_id: str) -> None:
    page = _export(sqlite_url, run_id, "html")
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    assert "default-src 'none'" in page  # the browser may fetch nothing, whatever slipped through
    assert 'href="https://en.wikipedia.org/wiki/Dawkins"' in page
    assert (
        "javascript:" not in page.split("<h2>Citations</h2>")[1].split("</ol>")[0].split("Bad link")[0][-200:]
    )
    assert 'href="javascript' not in page


def test_unknown_format_and_run(sqlite_url: str, run_id: str) -> None:
    with pytest.raises(ConfigError, match="format"):
        _export(sqlite_url, run_id, "pdf")
    with pytest.raises(RunNotFoundError):
        _export(sqlite_url, "missing", "md")


def test_exports_carry_each_search_and_llm_call(sqlite_url: str, run_id: str) -> None:
    doc = json.loads(_export(sqlite_url, run_id, "json"))
    assert [c["query"] for c in doc["searches"]] == ["q"]
    assert [(c["step_key"], c["completion_tokens"]) for c in doc["llm_calls"]] == [("answer:0", 12)]
    assert [(e["step_key"], e["kind"]) for e in doc["ledger_entries"]] == [
        ("search:0", "search"),
        ("answer:0", "llm"),
    ]
    assert "## Searches" in _export(sqlite_url, run_id, "md")
    assert "<h2>Searches</h2>" in _export(sqlite_url, run_id, "html")
