"""Content-addressed bodies: the sources a run read and the fetcher's page cache, each body stored once.

A body's address is the sha256 of its bytes, computed here (never taken from the caller, so a body
is never filed under the wrong address). Pages are keyed by the sha256 of their URL; a re-fetch that
changed the page points the URL at the new body, and the old body stays for the runs that read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from leadline.errors import StorageError
from leadline.storage.access import StoreAccess, core_table
from leadline.storage.base import SourceRecord, StoredPage
from leadline.storage.models import DocumentBlob, Page, Source, utc_now

_GC_ATTEMPTS = 3

_SOURCES_SQL = """
WITH bodies AS (
    INSERT INTO documents (sha256, body, size, created_at)
    SELECT d.sha256, d.body, d.size, %(now)s
    FROM unnest(%(digests)b::text[], %(bodies)b::bytea[], %(sizes)b::int[])
        WITH ORDINALITY AS d(sha256, body, size, n)
    ORDER BY d.n
    ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size
)
INSERT INTO sources (run_id, doc_id, title, url, sha256, created_at)
SELECT s.run_id, s.doc_id, s.title, s.url, s.sha256, %(now)s
FROM unnest(%(run_ids)b::text[], %(doc_ids)b::text[], %(titles)b::text[], %(urls)b::text[], %(shas)b::text[])
    AS s(run_id, doc_id, title, url, sha256)
ON CONFLICT (run_id, doc_id) DO NOTHING
"""
"""A node's sources and their bodies in one statement (PostgreSQL): the bodies first, in one order for
every writer, each locked by a no-op update as :meth:`DocumentMethods._put_document` does."""


def sha256_hex(body: bytes) -> str:
    """The hex sha256 of ``body``: a document's content address."""
    return hashlib.sha256(body).hexdigest()


class DocumentMethods(StoreAccess):
    """Mixed into :class:`~leadline.storage.store.SqlRunStore`: sources, pages and their bodies."""

    def _put_document(self, conn: Connection, body: bytes) -> str:
        digest = sha256_hex(body)
        stmt = self._insert(DocumentBlob).values(
            sha256=digest, body=body, size=len(body), created_at=utc_now()
        )
        # A no-op update rather than "do nothing": it locks an existing row until this transaction
        # commits, so a concurrent gc_documents cannot delete a body this writer is about to point at.
        conn.execute(stmt.on_conflict_do_update(index_elements=["sha256"], set_={"size": stmt.excluded.size}))
        return digest

    def record_source(self, source: SourceRecord) -> None:
        """Record a source a run read (body stored once by content); idempotent on run and doc id."""
        self.record_sources([source])

    def record_sources(self, sources: Sequence[SourceRecord]) -> None:
        """Record the sources a node read, in one transaction (see :meth:`record_source`)."""
        if not sources:
            return
        now = utc_now()
        bodies: dict[str, bytes] = {}
        rows = []
        for source in sources:
            body = source.text.encode("utf-8")
            digest = sha256_hex(body)
            bodies[digest] = body
            rows.append(
                {
                    "run_id": source.run_id,
                    "doc_id": source.doc_id,
                    "title": source.title,
                    "url": source.url,
                    "sha256": digest,
                    "created_at": now,
                }
            )
        if self._dialect == "postgresql":  # one statement in autocommit: no BEGIN/COMMIT round trips
            from leadline.storage.pg_arrays import Blobs, Ints, Texts

            digests = sorted(bodies)
            self._autocommit(
                _SOURCES_SQL,
                {
                    "now": now,
                    "digests": Texts(digests),
                    "bodies": Blobs(bodies[d] for d in digests),
                    "sizes": Ints(len(bodies[d]) for d in digests),
                    "run_ids": Texts(x.run_id for x in sources),
                    "doc_ids": Texts(x.doc_id for x in sources),
                    "titles": Texts(x.title for x in sources),
                    "urls": Texts(x.url for x in sources),
                    "shas": Texts(str(r["sha256"]) for r in rows),
                },
            )
            return
        with self._write() as conn:
            # bodies in one order for every writer: two runs reading the same passages lock the same
            # rows in the same order, so they never deadlock
            self._execute_direct(
                conn,
                "document",
                self._document_upsert,
                [
                    {"sha256": d, "body": bodies[d], "size": len(bodies[d]), "created_at": now}
                    for d in sorted(bodies)
                ],
            )
            self._execute_direct(
                conn,
                "source",
                lambda: self._insert(core_table(Source)).on_conflict_do_nothing(
                    index_elements=["run_id", "doc_id"]
                ),
                rows,
            )

    def _document_upsert(self) -> Any:
        stmt = self._insert(core_table(DocumentBlob))
        # as in _put_document: a no-op update that locks an existing body until the commit
        return stmt.on_conflict_do_update(index_elements=["sha256"], set_={"size": stmt.excluded.size})

    def list_sources(self, run_id: str) -> list[SourceRecord]:
        """The sources a run read, with their text."""
        stmt = (
            select(Source, DocumentBlob.body)
            .join(DocumentBlob, DocumentBlob.sha256 == Source.sha256)
            .where(Source.run_id == run_id)
            .order_by(Source.created_at, Source.doc_id)
        )
        with self._read() as conn:
            return [
                SourceRecord(
                    run_id=r.run_id, doc_id=r.doc_id, title=r.title, url=r.url, text=r.body.decode("utf-8")
                )
                for r in conn.execute(stmt)
            ]

    def get_page(self, url: str) -> StoredPage | None:
        """The cached page for ``url`` with its body, or None."""
        stmt = (
            select(Page, DocumentBlob.body)
            .join(DocumentBlob, DocumentBlob.sha256 == Page.sha256)
            .where(Page.url_sha256 == sha256_hex(url.encode("utf-8")))
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return StoredPage(
            url=row.url,
            final_url=row.final_url,
            status=row.status,
            content_type=row.content_type,
            sha256=row.sha256,
            body=bytes(row.body),
            fetched_at=row.fetched_at,
            headers=dict(row.headers),
        )

    def put_page(self, page: StoredPage) -> None:
        """Cache a fetched page; its body is stored once by content, the URL points at the newest."""
        values = {
            "url": page.url,
            "final_url": page.final_url,
            "status": page.status,
            "content_type": page.content_type,
            "fetched_at": page.fetched_at,
            "headers": dict(page.headers),
        }
        with self._write() as conn:
            # The address is computed here, not trusted from the caller, so a body is never mislabelled.
            values["sha256"] = self._put_document(conn, page.body)
            stmt = self._insert(Page).values(url_sha256=sha256_hex(page.url.encode("utf-8")), **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["url_sha256"], set_=values))

    def gc_documents(self) -> tuple[int, int]:
        """Delete the bodies no page and no source points at any more; returns (bodies, bytes) removed.

        Bodies lose their last reference when runs are deleted or a page is re-fetched with new
        content. A body a concurrent writer is re-using is either locked by it (the delete waits and
        the writer's reference keeps it) or, on PostgreSQL, makes the delete fail its foreign-key check;
        that attempt is rolled back and retried.
        """
        unreferenced = delete(DocumentBlob).where(
            ~exists().where(Page.sha256 == DocumentBlob.sha256),
            ~exists().where(Source.sha256 == DocumentBlob.sha256),
        )
        for attempt in range(_GC_ATTEMPTS):
            try:
                with self._write() as conn:
                    sizes = list(conn.execute(unreferenced.returning(DocumentBlob.size)).scalars())
                return len(sizes), int(sum(sizes))
            except StorageError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == _GC_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def document_count(self) -> int:
        """How many distinct bodies are stored."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(DocumentBlob)).scalar_one())


__all__ = ["DocumentMethods", "sha256_hex"]
