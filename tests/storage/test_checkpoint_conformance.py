"""The checkpointers we ship pass langgraph-checkpoint-conformance, in the database the store uses.

Each capability suite gets a fresh database (a new SQLite file, a new PostgreSQL schema) that already
holds leadline's own tables, because that is how the savers run in production: side by side with
runs and steps, opened through :func:`leadline.storage.checkpoint.open_checkpointer`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport

from leadline.storage.checkpoint import open_checkpointer
from leadline.storage.store import SqlRunStore


def _report(name: str, fresh_url: Callable[[], AsyncIterator[str]]) -> CapabilityReport:
    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        async for url in fresh_url():
            with SqlRunStore.from_url(url) as store:
                store.ensure_schema()
            async with open_checkpointer(url) as saver:
                yield saver

    registered = checkpointer_test(name=name)(factory)
    report = asyncio.run(validate(registered))
    report.print_report()
    return report


def _assert_conformant(report: CapabilityReport) -> None:
    failures = {cap: r.failures for cap, r in report.results.items() if r.detected and r.passed is not True}
    assert report.passed_all_base(), failures
    assert report.passed_all(), failures
    assert report.conformance_level() == "FULL"


def test_sqlite_checkpointer_conformance(tmp_path: Path) -> None:
    async def fresh_url() -> AsyncIterator[str]:
        yield f"sqlite:///{tmp_path / f'cp-{uuid.uuid4().hex[:8]}.db'}"

    _assert_conformant(_report("leadline AsyncSqliteSaver", fresh_url))


@pytest.mark.postgres
def test_postgres_checkpointer_conformance(pg_server: tuple[str, str]) -> None:
    import psycopg

    admin, base_url = pg_server

    async def fresh_url() -> AsyncIterator[str]:
        schema = f"leadline_cp_{uuid.uuid4().hex[:12]}"
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{base_url}?options=-csearch_path%3D{schema}"
        finally:
            async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    _assert_conformant(_report("leadline AsyncPostgresSaver", fresh_url))


@pytest.mark.postgres
def test_the_postgres_saver_sends_each_write_as_one_statement(pg_url: str) -> None:
    """The conformance run above is of the single-statement saver, not of a fallback to the library's
    pipelined writes; given a shared pipeline it falls back to them."""
    from leadline.storage.pg_saver import SingleStatementPostgresSaver

    async def check() -> None:
        async with open_checkpointer(pg_url) as saver:
            assert isinstance(saver, SingleStatementPostgresSaver) and saver.single_statement
            async with saver.conn.pipeline() as pipe:  # type: ignore[union-attr]
                assert not SingleStatementPostgresSaver(saver.conn, pipe=pipe).single_statement

    asyncio.run(check())


@pytest.mark.postgres
def test_a_new_threads_first_read_asks_nothing_and_later_reads_see_its_checkpoints(pg_url: str) -> None:
    """``expect_new_thread``: the read a run makes as it starts is answered without a query for a run
    created just now; once anything is written, the thread is read from the database as always."""
    from langgraph.checkpoint.base import empty_checkpoint

    async def check() -> None:
        async with open_checkpointer(pg_url) as saver:
            config: dict[str, Any] = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
            saver.expect_new_thread("t1")  # type: ignore[attr-defined]
            closed = saver.conn  # type: ignore[attr-defined]
            saver.conn = None  # type: ignore[attr-defined]  # any query would fail now
            assert await saver.aget_tuple(config) is None
            saver.conn = closed  # type: ignore[attr-defined]
            saved = await saver.aput(config, empty_checkpoint(), {"step": -1}, {})  # type: ignore[arg-type]
            assert (await saver.aget_tuple(config)) is not None
            saver.expect_new_thread("t2")  # type: ignore[attr-defined]
            other = {"configurable": {"thread_id": "t2", "checkpoint_ns": ""}}
            await saver.aput(other, empty_checkpoint(), {"step": -1}, {})  # type: ignore[arg-type]
            assert (await saver.aget_tuple(other)) is not None  # written since: read as always
            assert saved["configurable"]["checkpoint_id"]

    asyncio.run(check())


@pytest.mark.postgres
def test_a_tasks_writes_go_with_the_next_checkpoint_and_special_writes_at_once(pg_url: str) -> None:
    """``aput_writes`` of ordinary channels sends nothing: the rows go in the statement of the thread's
    next checkpoint. A read of the thread sends them first; a special write (an error, an interrupt) goes
    at once, with any that waited."""
    import psycopg
    from langgraph.checkpoint.base import empty_checkpoint

    from leadline.storage.checkpoint import postgres_conninfo

    async def check() -> None:
        async with (
            open_checkpointer(pg_url) as saver,
            await psycopg.AsyncConnection.connect(postgres_conninfo(pg_url), autocommit=True) as look,
        ):

            async def stored(thread: str) -> list[tuple[str, str]]:
                cur = await look.execute(
                    "SELECT task_id, channel FROM checkpoint_writes WHERE thread_id = %s"
                    " ORDER BY task_id, idx",
                    (thread,),
                )
                return [(r[0], r[1]) for r in await cur.fetchall()]

            first = await saver.aput(
                {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
                empty_checkpoint(),
                {"step": -1},
                {},  # type: ignore[arg-type]
            )
            await saver.aput_writes(first, [("answer", "x"), ("trace", ["a"])], "task-1")
            assert await stored("t") == []  # waiting for the step's checkpoint
            await saver.aput(first, empty_checkpoint(), {"step": 0}, {})  # type: ignore[arg-type]
            assert await stored("t") == [("task-1", "answer"), ("task-1", "trace")]

            await saver.aput_writes(first, [("answer", "y")], "task-2")
            read = await saver.aget_tuple(first)  # a read of the thread sends what waits first
            assert read is not None and ("task-2", "answer", "y") in read.pending_writes
            assert ("task-2", "answer") in await stored("t")

            await saver.aput_writes(first, [("answer", "z")], "task-3")
            await saver.aput_writes(first, [("__error__", "boom")], "task-4")
            assert {("task-3", "answer"), ("task-4", "__error__")} <= set(await stored("t"))

    asyncio.run(check())


def test_the_savers_arrays_read_back_as_sent(pg_url: str) -> None:
    # the saver writes its unnest arrays in PostgreSQL's binary format itself (storage/pg_arrays.py)
    import psycopg

    from leadline.storage.checkpoint import postgres_conninfo
    from leadline.storage.pg_saver import _columns

    rows = [("ns", "é ünï", 3, b"\x00\x01\xff", 0), ("", None, "00.1.2", None, -7)]
    params = _columns(rows, 0, ("texts", "more_texts", "versions", "blobs", "idx"))
    empty = _columns([], 0, ("texts", "blobs", "idx"))
    with psycopg.connect(postgres_conninfo(pg_url)) as conn:
        got = conn.execute(
            "SELECT %(texts)b::text[], %(more_texts)b::text[], %(versions)b::text[], %(blobs)b::bytea[],"
            " %(idx)b::int[]",
            params,
        ).fetchone()
        nothing = conn.execute(
            "SELECT %(texts)b::text[], %(blobs)b::bytea[], %(idx)b::int[]", empty
        ).fetchone()
    assert got == (["ns", ""], ["é ünï", None], ["3", "00.1.2"], [b"\x00\x01\xff", None], [0, -7])
    assert nothing == ([], [], [])


def test_the_savers_json_reads_back_as_json_dumps_would_write_it() -> None:
    # checkpoints and their metadata go through orjson; what orjson refuses goes through json.dumps
    import json

    from leadline.storage.pg_saver import _json

    plain = {"v": {"search": 3, "branch:to:plan": "00.1"}, 2: ["é ünï", 1.5, None, True], "big": 2**63 - 1}
    assert json.loads(_json(plain)) == json.loads(json.dumps(plain))
    huge = {"n": 2**70}  # past orjson's 64-bit integers
    assert json.loads(_json(huge)) == huge
