"""PostgreSQL connections the server dropped while they sat in the pool are replaced, not handed out.

The engine pings a pooled connection only when it has been idle a while (engine.py: a ping at every
checkout cost about a tenth of a batch run's CPU); these tests make every connection count as idle.
"""

from __future__ import annotations

import pytest
from pg_fixtures import PG_CONNINFO

from leadline.storage import engine as engine_module
from leadline.storage.store import SqlRunStore

pytestmark = pytest.mark.postgres


def _pooled_backend_pids(store: SqlRunStore) -> list[int]:
    with store.engine.connect() as conn:
        return [int(conn.connection.dbapi_connection.info.backend_pid)]  # type: ignore[union-attr]


def _terminate(pids: list[int]) -> None:
    import psycopg

    with psycopg.connect(PG_CONNINFO, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_the_server_dropped_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)
    store = SqlRunStore.from_url(pg_url)
    try:
        run_id = store.create_run(question="q?", mode="answer", model="m", budget={}, settings={})
        store.engine.dispose()  # one pooled connection from here on: the one the next call opens
        store.get_run(run_id)
        pids = _pooled_backend_pids(store)
        _terminate(pids)
        assert store.get_run(run_id).question == "q?"  # pinged, found dead, replaced
        assert _pooled_backend_pids(store) != pids
    finally:
        store.close()


def test_a_connection_used_just_now_is_not_pinged(pg_url: str) -> None:
    store = SqlRunStore.from_url(pg_url)
    pings: list[object] = []
    real = store.engine.dialect.do_ping
    store.engine.dialect.do_ping = lambda c: pings.append(c) or real(c)  # type: ignore[method-assign]
    try:
        run_id = store.create_run(question="q?", mode="answer", model="m", budget={}, settings={})
        for _ in range(5):
            store.get_run(run_id)
        assert pings == []
    finally:
        store.close()


def test_a_connection_lost_under_a_step_written_through_the_driver_is_dropped_from_the_pool(
    pg_url: str,
) -> None:
    # record_step goes through the driver's cursor (StoreAccess._execute_direct): a connection the server
    # dropped fails that call as a storage error, and the next call gets a new connection
    from leadline.errors import StorageError
    from leadline.storage.base import StepRecord

    store = SqlRunStore.from_url(pg_url)
    try:
        run_id = store.create_run(question="q?", mode="answer", model="m", budget={}, settings={})
        store.engine.dispose()
        store.get_run(run_id)  # one pooled connection, used just now: not pinged at the next checkout
        pids = _pooled_backend_pids(store)
        _terminate(pids)

        def step(key: str) -> StepRecord:
            return StepRecord(run_id=run_id, key=key, kind="note", node="n", request={}, response={})

        with pytest.raises(StorageError):
            store.record_step(step("a"))
        assert store.record_step(step("b")).key == "b"
        assert _pooled_backend_pids(store) != pids
        assert [s.key for s in store.list_steps(run_id)] == ["b"]
    finally:
        store.close()


def test_a_one_statement_write_hands_its_connection_back_transactional(pg_url: str) -> None:
    # record_step and create_run send one statement in autocommit (StoreAccess._write_one): the pooled
    # connection must come back out of autocommit, or a later multi-statement write would not be atomic
    from leadline.storage.base import StepRecord

    store = SqlRunStore.from_url(pg_url)
    try:
        run_id = store.create_run(question="q?", mode="answer", model="m", budget={}, settings={})
        store.record_step(StepRecord(run_id=run_id, key="a", kind="note", node="n", request={}, response={}))
        with store.engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            assert driver is not None and driver.autocommit is False  # type: ignore[attr-defined]
        # a key recorded before returns the first record, read after the one statement wrote nothing
        again = StepRecord(run_id=run_id, key="a", kind="note", node="other", request={}, response={})
        assert store.record_step(again).node == "n"
    finally:
        store.close()


def test_a_pooled_connection_left_broken_is_dropped_and_the_write_fails_as_a_storage_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a connection psycopg marked broken refuses autocommit: that is the store's error, and the pool
    # drops the connection instead of handing it out again
    import psycopg

    from leadline.errors import StorageError
    from leadline.storage.base import StepRecord

    store = SqlRunStore.from_url(pg_url)
    try:
        run_id = store.create_run(question="q?", mode="answer", model="m", budget={}, settings={})
        real = store.engine.raw_connection
        dropped: list[BaseException] = []

        class Broken:
            closed = False

            @property
            def autocommit(self) -> bool:
                return False

            @autocommit.setter
            def autocommit(self, value: bool) -> None:
                raise psycopg.OperationalError("the connection is lost")

        class Fairy:
            dbapi_connection = Broken()

            def invalidate(self, exc: BaseException) -> None:
                dropped.append(exc)

            def close(self) -> None:
                pass

        monkeypatch.setattr(store.engine, "raw_connection", lambda: Fairy())
        step = StepRecord(run_id=run_id, key="a", kind="note", node="n", request={}, response={})
        with pytest.raises(StorageError):
            store.record_step(step)
        assert len(dropped) == 1
        monkeypatch.setattr(store.engine, "raw_connection", real)
        assert store.record_step(step).key == "a"
    finally:
        store.close()
