"""PostgreSQL array parameters in the binary format, written straight from typed lists.

A statement that writes many rows at once (a checkpoint's blobs, a node's sources) passes each column
as an array and ``unnest``s it: one statement instead of an ``executemany``. psycopg's own list dumper
works out each list's element type (a scan of the list, a dumper per call) and is pure Python; these
list types say their element type by their class, so the bytes are a header and the elements. Importing
this module registers their dumpers with psycopg (send them as ``%(name)b``).
"""

from __future__ import annotations

import struct
from typing import Any

from psycopg import adapters
from psycopg.adapt import Dumper
from psycopg.pq import Format


class Texts(list[str | None]):
    """A ``text[]`` parameter (dumped by :class:`_ArrayDumper`)."""


class Blobs(list[bytes | None]):
    """A ``bytea[]`` parameter."""


class Ints(list[int]):
    """An ``int4[]`` parameter."""


_HEAD = struct.Struct("!iiIii")
_LENGTH = struct.Struct("!i")
_INT = struct.Struct("!ii")
_NULL = _LENGTH.pack(-1)


class _ArrayDumper(Dumper):
    """A one-dimensional array in PostgreSQL's binary format, written straight from the list (at 32 runs
    at once psycopg's generic list dumper was about a third of a checkpoint write's CPU)."""

    format = Format.BINARY
    element_oid = 0

    def dump(self, obj: Any) -> bytes:
        n = len(obj)
        if n == 0:
            return _HEAD.pack(0, 0, self.element_oid, 0, 0)[:12]
        return _HEAD.pack(1, int(None in obj), self.element_oid, n, 1) + self._elements(obj)

    def _elements(self, obj: Any) -> bytes:
        parts = []
        for x in obj:
            if x is None:
                parts.append(_NULL)
            else:
                data = self._bytes(x)
                parts.append(_LENGTH.pack(len(data)))
                parts.append(data)
        return b"".join(parts)

    def _bytes(self, x: Any) -> bytes:
        return x.encode() if isinstance(x, str) else str(x).encode()  # a version may be a number


class _TextArrayDumper(_ArrayDumper):
    oid = 1009  # text[]
    element_oid = 25


class _BlobArrayDumper(_ArrayDumper):
    oid = 1001  # bytea[]
    element_oid = 17

    def _bytes(self, x: Any) -> bytes:
        return bytes(x)


class _IntArrayDumper(_ArrayDumper):
    oid = 1007  # int4[]
    element_oid = 23

    def _elements(self, obj: Any) -> bytes:
        return b"".join(_INT.pack(4, x) for x in obj)


adapters.register_dumper(Texts, _TextArrayDumper)
adapters.register_dumper(Blobs, _BlobArrayDumper)
adapters.register_dumper(Ints, _IntArrayDumper)


__all__ = ["Blobs", "Ints", "Texts"]
