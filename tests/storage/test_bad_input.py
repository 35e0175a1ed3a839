"""Unusable databases give one clear StorageError, and nothing stored before is lost.

"Disk full" is simulated two ways: SQLite's ``max_page_count`` pragma (always; SQLite then fails
writes with the same SQLITE_FULL "database or disk is full" error a full disk gives), and a real
1 MiB tmpfs filled to the brim (only where the test may mount one: root on Linux; skipped otherwise).
A read-only disk is likewise a real tmpfs remounted read-only, plus SQLite's ``mode=ro`` everywhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from leadline.errors import StorageError
from leadline.storage.base import StepRecord
from leadline.storage.checkpoint import open_checkpointer
from leadline.storage.store import SqlRunStore


def _step(run_id: str, i: int, size: int = 200) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        key=f"llm:{i}",
        kind="llm",
        node="think",
        request={"prompt": "p" * size},
        response={"text": f"answer {i} " + "r" * size},
        completion_tokens=3,
    )


def _new_run(store: SqlRunStore) -> str:
    return store.create_run(question="q", mode="answer", model="m", budget={}, settings={})


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted under tmp_path (skips where mounting is not allowed)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root and mount(8); the max_page_count test covers disk full")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); the max_page_count test covers disk full"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "runs.db"
    with SqlRunStore.from_url(f"sqlite:///{path}") as store:
        _new_run(store)
    assert path.is_file()


def test_a_directory_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create the database directory"):
        SqlRunStore.from_url(f"sqlite:///{blocker / 'sub' / 'runs.db'}")


@pytest.mark.parametrize("content", [b"this is not a database at all " * 200, None])
def test_a_corrupt_file_is_refused_clearly(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "runs.db"
    if content is None:  # a real database whose header was overwritten
        with SqlRunStore.from_url(f"sqlite:///{path}") as store:
            _new_run(store)
        with path.open("r+b") as f:
            f.write(b"\x00garbage" * 16)
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with (
        SqlRunStore.from_url(f"sqlite:///{path}") as store,
        pytest.raises(StorageError, match="not a usable"),
    ):
        store.list_runs()
    with pytest.raises(StorageError, match="not a usable"):
        asyncio.run(_open_checkpointer(f"sqlite:///{path}"))
    assert path.read_bytes() == before  # we never "repair" a file we do not understand


async def _open_checkpointer(url: str) -> None:
    async with open_checkpointer(url):
        pass


def test_disk_full_via_max_page_count_keeps_earlier_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with SqlRunStore.from_url(url) as store:
        run_id = _new_run(store)
        for i in range(5):
            store.record_step(_step(run_id, i))
        with store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

        def limit_pages(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

        event.listen(store.engine, "connect", limit_pages)
        store.engine.dispose()
        written = 5
        with pytest.raises(StorageError, match="full") as caught:
            for i in range(5, 500):
                store.record_step(_step(run_id, i, size=3000))
                written += 1
        assert "nothing stored earlier was lost" in str(caught.value)
        steps = store.list_steps(run_id)
        assert [s.key for s in steps] == [f"llm:{i}" for i in range(written)]
        assert store.ledger_totals(run_id).completion_tokens == 3 * written
        assert store.get_step(run_id, f"llm:{written}") is None  # the failed write left no half-step

        event.remove(store.engine, "connect", limit_pages)
        store.engine.dispose()
        store.record_step(_step(run_id, written))  # space is back: the run continues
        assert len(store.list_steps(run_id)) == written + 1


def test_a_really_full_disk_keeps_earlier_data(tiny_fs: Path) -> None:
    url = f"sqlite:///{tiny_fs / 'runs.db'}"
    with SqlRunStore.from_url(url) as store:
        run_id = _new_run(store)
        written = 0
        with pytest.raises(StorageError, match="full"):
            for i in range(10_000):
                store.record_step(_step(run_id, i, size=4000))
                written += 1
        assert written > 0
        keys = [s.key for s in store.list_steps(run_id)]
        assert keys == [f"llm:{i}" for i in range(written)]
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_fs)], check=True)
    with SqlRunStore.from_url(url) as store:
        store.record_step(_step(run_id, written))
        assert len(store.list_steps(run_id)) == written + 1


def test_a_read_only_disk_is_refused_clearly(tiny_fs: Path) -> None:
    url = f"sqlite:///{tiny_fs / 'runs.db'}"
    with SqlRunStore.from_url(url) as store:
        run_id = _new_run(store)
        store.record_step(_step(run_id, 0))
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    with SqlRunStore.from_url(url) as store, pytest.raises(StorageError) as caught:
        store.record_step(_step(run_id, 1))
    assert "read-only" in str(caught.value) or "not writable" in str(caught.value)
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_fs)], check=True)
    with SqlRunStore.from_url(url) as store:
        assert [s.key for s in store.list_steps(run_id)] == ["llm:0"]


def test_a_read_only_database_refuses_writes_but_reads(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SqlRunStore.from_url(f"sqlite:///{path}") as store:
        run_id = _new_run(store)
        store.record_step(_step(run_id, 0))
    with SqlRunStore.from_url(f"sqlite:///file:{path}?mode=ro&uri=true") as ro:
        assert [s.key for s in ro.list_steps(run_id)] == ["llm:0"]
        with pytest.raises(StorageError, match="read-only"):
            ro.record_step(_step(run_id, 1))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; the tmpfs test covers it")
def test_a_read_only_directory_is_refused_clearly(tmp_path: Path) -> None:
    directory = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with SqlRunStore.from_url(f"sqlite:///{directory / 'runs.db'}") as store, pytest.raises(StorageError):
            store.list_runs()
    finally:
        directory.chmod(0o700)
