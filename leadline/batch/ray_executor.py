"""``--executor ray``: a batch's workers as Ray actors, on one machine or across a cluster.

Each actor runs one :class:`~leadline.batch.worker.BatchWorker` against the batch's PostgreSQL database
(the database is where they meet: leases, the pool, checkpoints), so an actor that dies mid-job is
handled like any dead worker: its lease passes and another actor resumes the run from its checkpoint.
The driver replaces actors that die while jobs are left. Several OpenAI-compatible endpoints (vLLM
replicas, ``--base-url URL1,URL2``) are spread over the actors round-robin, and each actor sends every
call to the least loaded of them. Needs the ``ray`` extra.
"""

from __future__ import annotations

import logging
from typing import Any

from leadline.batch.runner import BatchRun
from leadline.errors import ConfigError

log = logging.getLogger(__name__)
MAX_REPLACEMENTS_PER_WORKER = 3


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--executor ray needs the ray extra: pip install 'leadline[ray]'") from exc
    return ray


def connect(address: str | None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (or start a local one); an unreachable address is one line."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address and address != "auto":
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False
            )
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        message = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"cannot reach the Ray cluster at {address or 'a new local cluster'}: {message}"
        ) from exc


def _check_reachable(address: str) -> None:
    """A TCP connect to the cluster's address first: ``ray.init`` waits minutes for an absent GCS."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"ray://{address}")
    host, port = parts.hostname, parts.port or (10001 if address.startswith("ray://") else 6379)
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=5):
            return
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


class BatchActor:
    """One batch worker in a Ray actor (wrapped with ``ray.remote`` by :func:`start_actors`)."""

    def __init__(
        self, db_url: str, batch_id: str, concurrency: int, lease_s: float, base_url: str | None
    ) -> None:
        from leadline.batch.worker import default_worker_id

        self.db_url, self.batch_id = db_url, batch_id
        self.concurrency, self.lease_s, self.base_url = concurrency, lease_s, base_url
        self.worker_id = "ray:" + default_worker_id()

    def name(self) -> str:
        """This actor's worker id (what its leases are held under)."""
        return self.worker_id

    def run(self) -> dict[str, Any]:
        """Work on the batch until no job is left; returns what was done."""
        import asyncio

        from leadline.batch.worker import BatchWorker
        from leadline.config import Settings
        from leadline.storage.store import SqlRunStore

        store = SqlRunStore.from_url(self.db_url)
        try:
            settings = Settings.from_env(db_url=self.db_url)
            worker = BatchWorker(
                store,
                self.batch_id,
                settings=settings,
                worker_id=self.worker_id,
                concurrency=self.concurrency,
                lease_s=self.lease_s,
                base_url=self.base_url,
            )
            stats = asyncio.run(worker.run())
        finally:
            store.close()
        return {"worker": stats.worker, "done": stats.done, "failed": stats.failed}


def start_actors(run: BatchRun, count: int, *, offset: int = 0) -> list[Any]:
    """``count`` batch actors; actor ``i`` starts on endpoint ``i`` of the batch's base URLs."""
    ray = _ray()
    remote = ray.remote(num_cpus=1, max_restarts=0)(BatchActor)
    urls = list(run.base_urls)
    return [
        remote.remote(
            run.db_url,
            run.batch_id,
            run.concurrency,
            run.lease_s,
            ",".join(urls[(offset + i) % len(urls) :] + urls[: (offset + i) % len(urls)]) if urls else None,
        )
        for i in range(count)
    ]


def wait_actors(run: BatchRun, actors: list[Any]) -> list[dict[str, Any]]:
    """Wait for the actors; replace one that dies while the batch has jobs left."""
    ray = _ray()
    from ray.exceptions import RayActorError

    pending = {actor.run.remote(): actor for actor in actors}
    results: list[dict[str, Any]] = []
    replacements = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        pending.pop(ref)
        try:
            results.append(ray.get(ref))
        except RayActorError as exc:
            log.warning("a batch actor died: %s", " ".join(str(exc).split())[:200])
            progress = run.store.batch_progress(run.batch_id)
            if not progress.finished and replacements < MAX_REPLACEMENTS_PER_WORKER * max(1, run.workers):
                replacements += 1
                (fresh,) = start_actors(run, 1, offset=replacements)
                pending[fresh.run.remote()] = fresh
    return results


def run_on_ray(run: BatchRun) -> list[dict[str, Any]]:
    """Run the batch on Ray: ``run.workers`` actors until no job is left."""
    from leadline.storage.engine import is_sqlite

    if is_sqlite(run.db_url):
        raise ConfigError("--executor ray needs a PostgreSQL database the actors can all reach (--db)")
    connect(run.ray_address, num_cpus=None if run.ray_address else max(2, run.workers))
    import asyncio

    from leadline.batch.runner import prepare_checkpoints

    asyncio.run(prepare_checkpoints(run.db_url))
    return wait_actors(run, start_actors(run, run.workers))


__all__ = ["BatchActor", "connect", "run_on_ray", "start_actors", "wait_actors"]
