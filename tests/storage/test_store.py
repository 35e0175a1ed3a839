"""SqlRunStore on SQLite and PostgreSQL: runs, steps recorded once, ledger, sources and pages."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event

from leadline.errors import ConfigError, RunNotFoundError
from leadline.storage.base import PageStore, RunStore, SourceRecord, StepRecord, StoredPage
from leadline.storage.store import SqlRunStore, sha256_hex


def _run(store: SqlRunStore, question: str = "Who wrote The Selfish Gene?") -> str:
    return store.create_run(
        question=question, mode="answer", model="fake", budget={"tokens": 100}, settings={}
    )


def _llm(run_id: str, key: str, text: str, tokens: int = 7) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        key=key,
        kind="llm",
        node="think",
        request={"model": "fake-1", "messages": [{"role": "user", "content": "q"}], "max_tokens": 64},
        response={"text": text},
        prompt_tokens=11,
        completion_tokens=tokens,
        seconds=0.25,
    )


def _search(run_id: str, key: str, query: str) -> StepRecord:
    results = [{"doc_id": "d1", "title": "Dawkins"}, {"doc_id": "d2", "title": "Oxford"}]
    return StepRecord(
        run_id=run_id,
        key=key,
        kind="search",
        node="search",
        request={"query": query, "backend": "local", "k": 2},
        response={"results": results},
        searches=1,
        seconds=0.05,
    )


def test_implements_the_protocols(store: SqlRunStore) -> None:
    assert isinstance(store, RunStore)
    assert isinstance(store, PageStore)


def test_run_lifecycle(store: SqlRunStore) -> None:
    run_id = _run(store)
    assert store.get_run(run_id).status == "running"
    citations = [
        {"doc_id": "d1", "title": "Dawkins", "url": "https://example.org/d"},
        {"doc_id": "d2", "title": "O"},
    ]
    store.finish_run(
        run_id,
        status="done",
        answer="Oxford",
        citations=citations,
        report="# Report\n\nOxford [1].",
        spend={"tokens": 7, "searches": 1},
    )
    run = store.get_run(run_id)
    assert (run.status, run.answer, run.report) == ("done", "Oxford", "# Report\n\nOxford [1].")
    assert run.citations == citations
    assert run.spend == {"tokens": 7, "searches": 1}
    assert run.created_at is not None and run.finished_at is not None
    assert run.created_at.tzinfo is not None and run.finished_at >= run.created_at


def test_a_run_finished_again_keeps_only_its_new_citations(store: SqlRunStore) -> None:
    # no report: on PostgreSQL the run's end and its citations are one statement
    run_id = _run(store)
    first = [{"doc_id": "d1", "title": "Dawkins ünï", "url": "https://x.org", "extra": [1, {"k": None}]}]
    store.finish_run(run_id, status="done", answer="Oxford", citations=first, spend={"tokens": 3})
    run = store.get_run(run_id)
    assert (run.status, run.answer, run.citations, run.spend) == ("done", "Oxford", first, {"tokens": 3})
    again = [{"doc_id": "d2", "title": "Two"}, {"doc_id": "d3", "title": "Three"}]
    store.finish_run(run_id, status="done", citations=again)
    assert store.get_run(run_id).citations == again
    store.finish_run(run_id, status="failed", error="boom", citations=again[:1])
    run = store.get_run(run_id)
    assert (run.status, run.error, run.answer, run.citations) == ("failed", "boom", "Oxford", again[:1])
    store.finish_run(run_id, status="done")  # citations not given: kept
    assert store.get_run(run_id).citations == again[:1]
    with pytest.raises(RunNotFoundError):
        store.finish_run("nope", status="done", citations=again)


def test_list_runs_newest_first_and_by_status(store: SqlRunStore) -> None:
    ids = [_run(store, f"question {i}") for i in range(3)]
    store.finish_run(ids[0], status="failed", error="boom")
    listed = store.list_runs(limit=10)
    assert [r.run_id for r in listed] == list(reversed(ids))
    assert [r.run_id for r in store.list_runs(limit=10, status="failed")] == [ids[0]]
    assert len(store.list_runs(limit=2)) == 2


def test_unknown_run_and_duplicate_id(store: SqlRunStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.get_run("nope")
    with pytest.raises(RunNotFoundError):
        store.finish_run("nope", status="done")
    with pytest.raises(RunNotFoundError):
        store.record_step(_llm("nope", "llm:0", "x"))
    with pytest.raises(RunNotFoundError):
        store.delete_run("nope")
    run_id = store.create_run(
        question="q", mode="answer", model="m", budget={}, settings={}, run_id="fixed-id"
    )
    assert run_id == "fixed-id"
    with pytest.raises(ConfigError, match="exists"):
        store.create_run(question="q", mode="answer", model="m", budget={}, settings={}, run_id="fixed-id")


def test_record_step_is_idempotent_and_first_record_wins(store: SqlRunStore) -> None:
    run_id = _run(store)
    first = store.record_step(_llm(run_id, "think:0:abc", "first answer"))
    again = store.record_step(_llm(run_id, "think:0:abc", "a different answer", tokens=99))
    assert again.response == {"text": "first answer"}
    assert again.completion_tokens == 7
    assert again == store.get_step(run_id, "think:0:abc")
    assert first.response == again.response and first.request == again.request
    assert store.get_step(run_id, "missing") is None
    assert len(store.list_steps(run_id)) == 1
    assert store.ledger_totals(run_id).completion_tokens == 7


def test_first_write_returns_the_callers_record_and_replay_its_json_form(store: SqlRunStore) -> None:
    run_id = _run(store)
    step = StepRecord(run_id=run_id, key="k", kind="note", node="plan", response={"queries": ("a", "b")})
    written = store.record_step(step)
    assert written.response == step.response  # how a loop learns it won the race for this key
    assert written.created_at is not None
    replayed = store.get_step(run_id, "k")
    assert replayed is not None and replayed.response == {"queries": ["a", "b"]}
    assert store.record_step(step).response == {"queries": ["a", "b"]}


def test_ledger_is_the_sum_of_steps_and_details_are_derived(store: SqlRunStore) -> None:
    run_id = _run(store)
    steps = [
        _llm(run_id, "plan:0", "plan", tokens=5),
        _search(run_id, "search:0", "selfish gene author"),
        _llm(run_id, "think:1", "Dawkins", tokens=9),
        _search(run_id, "search:1", "Dawkins university"),
        StepRecord(run_id=run_id, key="read:0", kind="read", node="read", fetches=1, seconds=0.5),
        StepRecord(run_id=run_id, key="note:0", kind="note", node="decide"),
    ]
    for s in steps:
        store.record_step(s)
    for s in steps[:3]:  # a resume replays these: nothing may be charged twice
        store.record_step(s)
    totals = store.ledger_totals(run_id)
    assert totals.completion_tokens == 14
    assert totals.prompt_tokens == 22
    assert totals.searches == 2
    assert totals.fetches == 1
    assert totals.llm_calls == 2
    assert totals.seconds == pytest.approx(0.25 * 2 + 0.05 * 2 + 0.5)
    entries = store.ledger_entries(run_id)
    assert [e.step_key for e in entries] == ["plan:0", "search:0", "think:1", "search:1", "read:0"]
    assert sum(e.completion_tokens for e in entries) == sum(
        s.completion_tokens for s in store.list_steps(run_id)
    )
    calls = store.llm_calls(run_id)
    assert [(c.step_key, c.model, c.completion_tokens) for c in calls] == [
        ("plan:0", "fake-1", 5),
        ("think:1", "fake-1", 9),
    ]
    searches = store.search_calls(run_id)
    assert [(s.query, s.backend, s.n_results) for s in searches] == [
        ("selfish gene author", "local", 2),
        ("Dawkins university", "local", 2),
    ]


def test_a_step_and_its_rows_go_as_one_statement_where_the_database_can(
    store: SqlRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot write: on PostgreSQL the step, its ledger row and its detail row go as one statement
    (step_statement.py), sent through the driver's cursor (counted there); SQLite sends the three
    INSERTs. A replay writes nothing either way."""
    run_id = _run(store)
    sent: list[str] = []
    postgres = store.engine.dialect.name == "postgresql"
    if postgres:
        import psycopg

        execute = psycopg.Cursor.execute

        def counted(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(str(statement))
            return execute(cursor, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.record_step(_llm(run_id, "think:0", "Dawkins"))
        first = len(sent)
        store.record_step(_llm(run_id, "think:0", "Dawkins"))  # a replay
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
        monkeypatch.undo()
    # SQLite's writes open with BEGIN IMMEDIATE
    writes = [x for x in sent[:first] if not x.lstrip().upper().startswith("BEGIN")]
    assert len(writes) == (1 if postgres else 3)
    assert len(store.ledger_entries(run_id)) == 1 and len(store.llm_calls(run_id)) == 1
    assert store.ledger_totals(run_id).completion_tokens == 7


def test_concurrent_duplicate_steps_from_threads_store_one(store: SqlRunStore) -> None:
    run_id = _run(store)
    store.ensure_schema()
    barrier = threading.Barrier(8)
    results: list[StepRecord] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results.append(store.record_step(_llm(run_id, "same-key", f"answer {i}")))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.response["text"] for r in results}) == 1
    assert len(store.list_steps(run_id)) == 1
    assert store.ledger_totals(run_id).llm_calls == 1


def test_sources_are_idempotent_and_bodies_deduplicated(store: SqlRunStore) -> None:
    a, b = _run(store), _run(store)
    text = "Richard Dawkins studied at Balliol College, Oxford."
    store.record_source(SourceRecord(run_id=a, doc_id="d1", title="Dawkins", url="https://x.org", text=text))
    store.record_source(SourceRecord(run_id=a, doc_id="d1", title="Dawkins", url="https://x.org", text=text))
    store.record_source(SourceRecord(run_id=b, doc_id="other", title="Same text", text=text))
    assert [s.text for s in store.list_sources(a)] == [text]
    assert store.list_sources(b)[0].title == "Same text"
    assert store.document_count() == 1


def test_a_nodes_sources_are_written_together_with_shared_and_repeated_bodies(store: SqlRunStore) -> None:
    # one call, as a read node makes it: two sources with one body, one source given twice, a new body
    run_id = _run(store)
    shared, other = "Balliol College, Oxford.", "Cats are small domesticated animals. é ünï"
    store.record_sources(
        [
            SourceRecord(run_id=run_id, doc_id="d1", title="One", url="https://x.org/1", text=shared),
            SourceRecord(run_id=run_id, doc_id="d2", title="Two", text=shared),
            SourceRecord(run_id=run_id, doc_id="d1", title="One again", text=shared),
            SourceRecord(run_id=run_id, doc_id="d3", title="Three", text=other),
        ]
    )
    got = {s.doc_id: (s.title, s.url, s.text) for s in store.list_sources(run_id)}
    assert got == {
        "d1": ("One", "https://x.org/1", shared),
        "d2": ("Two", "", shared),
        "d3": ("Three", "", other),
    }
    assert store.document_count() == 2
    store.record_sources([SourceRecord(run_id=run_id, doc_id="d3", title="Three", text=other)])
    assert len(store.list_sources(run_id)) == 3 and store.document_count() == 2


def test_page_store_round_trip_and_content_addressing(store: SqlRunStore) -> None:
    body = b"<html><body>Balliol</body></html>"
    page = StoredPage(
        url="https://example.org/a",
        final_url="https://example.org/a/",
        status=200,
        content_type="text/html",
        sha256="caller-supplied value is not trusted",
        body=body,
        fetched_at=1234.5,
        headers={"etag": "x"},
    )
    store.put_page(page)
    store.put_page(StoredPage(**{**page.__dict__, "url": "https://mirror.example.org/a"}))
    got = store.get_page("https://example.org/a")
    assert got is not None
    assert got.body == body and got.sha256 == sha256_hex(body)
    assert (got.final_url, got.status, got.content_type, got.headers) == (
        "https://example.org/a/",
        200,
        "text/html",
        {"etag": "x"},
    )
    assert store.document_count() == 1
    assert store.get_page("https://example.org/unknown") is None
    # A re-fetch that changed the page replaces the URL's entry.
    store.put_page(StoredPage(**{**page.__dict__, "body": b"new body", "status": 200}))
    again = store.get_page("https://example.org/a")
    assert again is not None and again.body == b"new body"
    assert store.document_count() == 2


def test_delete_run_removes_everything_recorded_under_it(store: SqlRunStore) -> None:
    run_id, keep = _run(store), _run(store)
    for r in (run_id, keep):
        store.record_step(_llm(r, "k", "x"))
        store.record_step(_search(r, "s", "q"))
        store.record_source(SourceRecord(run_id=r, doc_id="d", title="t", text=f"text {r}"))
        store.finish_run(r, status="done", citations=[{"doc_id": "d"}], report="r")
    store.delete_run(run_id)
    with pytest.raises(RunNotFoundError):
        store.get_run(run_id)
    assert store.list_steps(run_id) == [] and store.ledger_entries(run_id) == []
    assert store.llm_calls(run_id) == [] and store.search_calls(run_id) == []
    assert store.list_sources(run_id) == []
    assert len(store.list_steps(keep)) == 2 and store.get_run(keep).citations == [{"doc_id": "d"}]


def test_gc_documents_removes_only_unreferenced_bodies(store: SqlRunStore) -> None:
    gone, kept = _run(store), _run(store)
    store.record_source(
        SourceRecord(run_id=gone, doc_id="a", title="t", text="only the deleted run read this")
    )
    store.record_source(SourceRecord(run_id=gone, doc_id="b", title="t", text="both runs read this"))
    store.record_source(SourceRecord(run_id=kept, doc_id="b", title="t", text="both runs read this"))
    page = StoredPage(
        url="https://example.org/p",
        final_url="https://example.org/p",
        status=200,
        content_type="text/html",
        sha256="",
        body=b"old page",
        fetched_at=1.0,
        headers={},
    )
    store.put_page(page)
    store.put_page(StoredPage(**{**page.__dict__, "body": b"new page"}))  # the old body loses its URL
    assert store.document_count() == 4
    assert store.gc_documents() == (1, len(b"old page"))
    store.delete_run(gone)
    assert store.gc_documents() == (1, len("only the deleted run read this"))
    assert store.document_count() == 2
    assert [s.text for s in store.list_sources(kept)] == ["both runs read this"]
    got = store.get_page("https://example.org/p")
    assert got is not None and got.body == b"new page"
    assert store.gc_documents() == (0, 0)
    # A body that was collected can be stored again.
    store.record_source(SourceRecord(run_id=kept, doc_id="c", title="t", text="old page"))
    assert store.document_count() == 3


def test_gc_documents_racing_a_writer_never_loses_a_referenced_body(store: SqlRunStore) -> None:
    text = "a body that keeps losing and regaining its only reference"
    previous = None
    errors: list[BaseException] = []
    for _ in range(25):
        run_id = _run(store)
        if previous is not None:
            store.delete_run(previous)  # the body is unreferenced now, and about to be re-used

        def write(run_id: str = run_id) -> None:
            try:
                store.record_source(SourceRecord(run_id=run_id, doc_id="d", title="t", text=text))
            except BaseException as exc:  # reported below
                errors.append(exc)

        def collect() -> None:
            try:
                store.gc_documents()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=write), threading.Thread(target=collect)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert [s.text for s in store.list_sources(run_id)] == [text]
        previous = run_id


def test_set_status(store: SqlRunStore) -> None:
    run_id = _run(store)
    store.set_status(run_id, "interrupted")
    assert store.get_run(run_id).status == "interrupted"
    with pytest.raises(RunNotFoundError):
        store.set_status("nope", "running")
