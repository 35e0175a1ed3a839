"""The PostgreSQL checkpoint saver with each write sent as one statement.

LangGraph's ``AsyncPostgresSaver`` writes a checkpoint as an ``executemany`` of its blobs plus the
checkpoint row inside a psycopg pipeline, and a task's writes as another pipelined ``executemany``,
each after a hop to a worker thread for serialisation: per graph step two pipelines entered, synced and
left, all under the interpreter lock that a batch worker's concurrent runs share. This subclass sends
the same rows, to the same tables, in one statement each: the blobs as ``unnest`` arrays in a
data-modifying CTE in front of the checkpoint upsert (one statement, so as atomic as the pipeline was),
the writes as one multi-row upsert, serialised inline; the arrays go in psycopg's binary format (its
text-format array dumper, pure Python, cost ~130 µs a write against ~13). A run created just now says so
(:meth:`SingleStatementPostgresSaver.expect_new_thread`), and the graph's first read of its thread is
answered without a query. Measured at 32 runs at once
(``benchmarks/batch_floor.py``, 15-step runs): the checkpointer's CPU per run 38–49 ms → 22–23 ms,
a whole batch run's about 10 % less. Reads, listing, deletion and migrations are the library's. It
passes the same conformance suite (tests/storage/test_checkpoint_conformance.py); given a shared
pipeline, or a library whose row layout it does not know, it uses the library's own writes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.types.json import Jsonb

from leadline.storage.pg_arrays import Blobs, Ints, Texts

try:  # the delta-channel snapshot marker of langgraph-checkpoint >= 4.x; older versions have none
    from langgraph.checkpoint.serde.types import _DeltaSnapshot
except ImportError:  # pragma: no cover - depends on the installed library

    class _DeltaSnapshot:  # type: ignore[no-redef]
        """Stands in for the marker where the library has none (nothing is ever one)."""


__all__ = ["SingleStatementPostgresSaver"]

_PUT_SQL = """
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(thread_id)s, %(ns)s, b.channel, b.version, b.type, b.blob
    FROM unnest(%(channels)b::text[], %(versions)b::text[], %(types)b::text[], %(blobs)b::bytea[])
        AS b(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES (%(thread_id)s, %(ns)s, %(checkpoint_id)s, %(parent_id)s, %(checkpoint)s, %(metadata)s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""

_WRITES_SQL = """
INSERT INTO checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, %(ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s, w.idx, w.channel, w.type, w.blob
FROM unnest(%(idx)b::int[], %(channels)b::text[], %(types)b::text[], %(blobs)b::bytea[])
    AS w(idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO {action}
"""
_DEFERRED_WRITES_SQL = """
INSERT INTO checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
SELECT %(thread_id)s, w.ns, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, w.type, w.blob
FROM unnest(%(w_ns)b::text[], %(w_checkpoint_ids)b::text[], %(w_task_ids)b::text[], %(w_task_paths)b::text[],
            %(w_idx)b::int[], %(w_channels)b::text[], %(w_types)b::text[], %(w_blobs)b::bytea[])
    AS w(ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
"""
"""Task writes that waited for a checkpoint: sent alone when the thread is read, a special write comes
or too many threads wait, else in the checkpoint's statement (``_PUT_WITH_WRITES_SQL``)."""
_PUT_WITH_WRITES_SQL = (
    f"WITH writes AS ({_DEFERRED_WRITES_SQL}),{_PUT_SQL.replace('WITH blobs AS', ' blobs AS', 1)}"
)
"""A checkpoint with the task writes that waited for it (:meth:`SingleStatementPostgresSaver.aput_writes`)."""
_WRITE_COLUMNS = (
    "w_ns",
    "w_checkpoint_ids",
    "w_task_ids",
    "w_task_paths",
    "w_idx",
    "w_channels",
    "w_types",
    "w_blobs",
)
MAX_DEFERRED_THREADS = 256
"""Threads whose writes may wait for their next checkpoint at once; past this every waiting write is sent
(a thread interrupted between a task and its step's checkpoint never gets that checkpoint)."""

_UPSERT_WRITES_SQL = _WRITES_SQL.format(
    action="UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
)
_INSERT_WRITES_SQL = _WRITES_SQL.format(action="NOTHING")


def _library_layout_known() -> bool:
    """True when the installed saver writes the rows this module writes (same statements, same helpers)."""
    from langgraph.checkpoint.postgres import base

    return (
        "task_path" in getattr(base, "INSERT_CHECKPOINT_WRITES_SQL", "")
        and "blob" in getattr(base, "UPSERT_CHECKPOINT_BLOBS_SQL", "")
        and hasattr(AsyncPostgresSaver, "_dump_blobs")
        and hasattr(AsyncPostgresSaver, "_dump_writes")
    )


def _json(obj: Any) -> bytes:
    """A checkpoint's (or its metadata's) JSON, by orjson: ~5× faster than ``json.dumps``, which was a
    tenth of a checkpoint write's CPU. Anything orjson refuses goes to ``json.dumps`` as before."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj).encode()


def _columns(rows: Sequence[tuple[Any, ...]], start: int, names: Sequence[str]) -> dict[str, list[Any]]:
    """The rows' columns from ``start`` on, one list per name: the arrays ``unnest`` takes (``...blobs``
    are ``bytea[]``, ``...idx`` ``int4[]``, the others ``text[]``)."""
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(names):
        kind = Blobs if name.endswith("blobs") else Ints if name.endswith("idx") else Texts
        columns[name] = kind(r[start + i] for r in rows)
    return columns


class SingleStatementPostgresSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` whose ``aput`` and ``aput_writes`` each send one statement (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.single_statement = self.pipe is None and _library_layout_known()
        """False when the library's own writes are used (a shared pipeline, or an unknown row layout)."""
        self._new_threads: set[str] = set()
        self.defer_writes = self.single_statement
        """Whether a task's ordinary writes wait for its step's checkpoint (see :meth:`aput_writes`)."""
        self._deferred: dict[str, list[tuple[Any, ...]]] = {}
        """Per thread, the rows of task writes waiting to go with the thread's next checkpoint."""

    def expect_new_thread(self, thread_id: str) -> None:
        """Say that ``thread_id`` belongs to a run created just now, so it has no checkpoint yet: the
        graph's read of its latest checkpoint when the run starts (one joined query, about 5 % of a
        batch run's CPU) is answered without asking the database. Only that first read, and only until
        something is written to the thread."""
        self._new_threads.add(thread_id)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The library's read, except the first read of a thread known to be new (no checkpoint)."""
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if thread_id in self._new_threads:
            self._new_threads.discard(thread_id)
            if not configurable.get("checkpoint_id"):
                return None
        await self.flush_writes(thread_id)
        return await super().aget_tuple(config)

    async def alist(self, config: RunnableConfig | None, **kwargs: Any) -> AsyncIterator[CheckpointTuple]:
        """The library's listing, after any waiting writes are sent."""
        await self.flush_writes((config or {}).get("configurable", {}).get("thread_id"))
        async for item in super().alist(config, **kwargs):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        """The library's deletion; the thread's waiting writes are dropped with it."""
        self._deferred.pop(thread_id, None)
        await super().adelete_thread(thread_id)

    async def flush_writes(self, thread_id: str | None = None) -> None:
        """Send the task writes still waiting for a checkpoint: ``thread_id``'s, or every thread's."""
        threads = list(self._deferred) if thread_id is None else [thread_id]
        for thread in threads:
            rows = self._deferred.pop(thread, None)
            if rows:
                async with self._cursor() as cur:
                    await cur.execute(
                        _DEFERRED_WRITES_SQL, {"thread_id": thread, **_columns(rows, 0, _WRITE_COLUMNS)}
                    )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint and its changed channel blobs in one statement."""
        self._new_threads.discard(config["configurable"]["thread_id"])
        if not self.single_statement:
            return await super().aput(config, checkpoint, metadata, new_versions)
        configurable = dict(config["configurable"])
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        parent_id = configurable.pop("checkpoint_id", None)
        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        # primitive values stay inline in the checkpoint row, the others go to the blobs table
        blob_values: dict[str, Any] = {}
        for k, v in checkpoint["channel_values"].items():
            if isinstance(v, _DeltaSnapshot):
                blob_values[k] = copy["channel_values"].pop(k)
                copy["channel_values"][k] = True
            elif v is None or isinstance(v, (str, int, float, bool)):
                continue
            else:
                blob_values[k] = copy["channel_values"].pop(k)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        rows = self._dump_blobs(thread_id, checkpoint_ns, blob_values, versions)
        params = {
            "thread_id": thread_id,
            "ns": checkpoint_ns,
            **_columns(rows, 2, ("channels", "versions", "types", "blobs")),
            "checkpoint_id": checkpoint["id"],
            "parent_id": parent_id,
            "checkpoint": Jsonb(copy, dumps=_json),
            "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata), dumps=_json),
        }
        deferred = self._deferred.pop(thread_id, None)
        if deferred:
            params |= _columns(deferred, 0, _WRITE_COLUMNS)
        async with self._cursor() as cur:
            await cur.execute(_PUT_WITH_WRITES_SQL if deferred else _PUT_SQL, params)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes in one statement (an upsert for the special channels, as the library)."""
        self._new_threads.discard(config["configurable"]["thread_id"])
        if not self.single_statement:
            return await super().aput_writes(config, writes, task_id, task_path)
        if not writes:
            return None
        configurable = config["configurable"]
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if self.defer_writes and not any(w[0] in WRITES_IDX_MAP for w in writes):
            # ordinary channel writes wait for the step's checkpoint and go in its statement
            thread_id = configurable["thread_id"]
            if thread_id not in self._deferred and len(self._deferred) >= MAX_DEFERRED_THREADS:
                await self.flush_writes()
            self._deferred.setdefault(thread_id, []).extend(r[1:] for r in rows)  # all but the thread
            return None
        await self.flush_writes(configurable["thread_id"])  # what the task before it wrote goes first
        sql = _UPSERT_WRITES_SQL if all(w[0] in WRITES_IDX_MAP for w in writes) else _INSERT_WRITES_SQL
        params = {
            "thread_id": configurable["thread_id"],
            "ns": configurable["checkpoint_ns"],
            "checkpoint_id": configurable["checkpoint_id"],
            "task_id": task_id,
            "task_path": task_path,
            **_columns(rows, 5, ("idx", "channels", "types", "blobs")),
        }
        async with self._cursor() as cur:
            await cur.execute(sql, params)
        return None
