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

from collections.abc import Sequence
from typing import Any

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


def _columns(rows: Sequence[tuple[Any, ...]], start: int, names: Sequence[str]) -> dict[str, list[Any]]:
    """The rows' columns from ``start`` on, one list per name: the arrays ``unnest`` takes."""
    return {name: [r[start + i] for r in rows] for i, name in enumerate(names)}


class SingleStatementPostgresSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` whose ``aput`` and ``aput_writes`` each send one statement (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.single_statement = self.pipe is None and _library_layout_known()
        """False when the library's own writes are used (a shared pipeline, or an unknown row layout)."""
        self._new_threads: set[str] = set()

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
        return await super().aget_tuple(config)

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
            "checkpoint": Jsonb(copy),
            "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        }
        async with self._cursor() as cur:
            await cur.execute(_PUT_SQL, params)
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
