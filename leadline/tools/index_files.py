"""A corpus index on disk: its manifest, the checks that run before the engine reads a byte, durable writes.

An index is a directory: ``tantivy/`` (the engine's segments) and ``manifest.json`` (format version,
analyzer, passage count, size and sha256 of every file, where it came from). :func:`read_manifest` and
:func:`check_files` turn a truncated or garbled index into a :class:`~leadline.errors.CorpusIndexError`;
:func:`move_into_place` renames a finished build over the old index, so a crash leaves one or the other.
The engine side (schema, analyzer, search) is :mod:`leadline.tools.corpus_index`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from leadline.errors import CorpusIndexError

__all__ = [
    "ANALYZER",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "check_files",
    "describe_files",
    "move_into_place",
    "read_manifest",
    "refuse_foreign_directory",
    "sha256_file",
    "write_json_durably",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "leadline-corpus-index"
FORMAT_VERSION = 1
"""Bumped whenever the schema, the analyzer or the manifest changes meaning; older indexes must be rebuilt."""

ANALYZER = "simple|remove_long:40|lowercase|stopword:english|stemmer:english"
HASH_CHUNK = 1 << 20


def describe_files(root: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``root`` (synced to disk first), for the manifest."""
    files = {}
    for path in sorted(root.rglob("*")):
        # Lock files are empty and rewritten by any writer; they are not part of the index's content.
        if path.is_file() and not path.name.endswith(".lock"):
            _fsync_file(path)
            files[path.relative_to(root).as_posix()] = {
                "size": path.stat().st_size,
                "sha256": sha256_file(path),
            }
    return files


def read_manifest(directory: Path) -> dict[str, Any]:
    """The index's manifest, checked for format, version, analyzer and shape before anything else."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise CorpusIndexError(f"no corpus index at {directory} (no {MANIFEST_NAME})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusIndexError(f"corrupt corpus index at {directory}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CorpusIndexError(f"corrupt corpus index at {directory}: not a leadline corpus manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise CorpusIndexError(
            f"corpus index at {directory} has format {version!r}; this leadline reads {FORMAT_VERSION}"
            + ("; upgrade leadline" if newer else "; rebuild it with: leadline index")
        )
    files, count, name = manifest.get("files"), manifest.get("passage_count"), manifest.get("name")
    well_formed = (
        isinstance(files, dict)
        and bool(files)
        and all(
            isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
            for v in files.values()
        )
        and isinstance(count, int)
        and count > 0
        and isinstance(name, str)
        and manifest.get("analyzer") == ANALYZER
    )
    if not well_formed:
        raise CorpusIndexError(f"corrupt corpus index at {directory}: malformed manifest")
    return manifest


def check_files(directory: Path, manifest: dict[str, Any], *, verify: bool) -> None:
    """Every file the manifest lists is there at its size (and, with ``verify``, its checksum)."""
    root = directory.resolve()
    for relative, expected in manifest["files"].items():
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise CorpusIndexError(f"corrupt corpus index at {directory}: manifest names {relative!r}")
        try:
            size = path.stat().st_size
        except OSError:
            raise CorpusIndexError(f"corrupt corpus index at {directory}: {relative} is missing") from None
        if size != expected["size"]:
            raise CorpusIndexError(
                f"corrupt corpus index at {directory}: {relative} has {size} bytes, expected "
                f"{expected['size']} (truncated?); rebuild it"
            )
        if verify and sha256_file(path) != expected["sha256"]:
            raise CorpusIndexError(
                f"corrupt corpus index at {directory}: {relative} fails its checksum; rebuild it"
            )


def refuse_foreign_directory(directory: Path) -> None:
    """Raise unless ``directory`` is absent, empty or a corpus index (replacing it deletes it)."""
    # Replacing a directory deletes it; never do that to something that is not one of our indexes.
    if not directory.exists():
        return
    is_index_or_empty = directory.is_dir() and (
        (directory / MANIFEST_NAME).is_file() or not any(directory.iterdir())
    )
    if not is_index_or_empty:
        raise CorpusIndexError(f"refusing to replace {directory}: it exists and is not a corpus index")


def move_into_place(staging: Path, directory: Path) -> None:
    """Rename a finished staging directory over ``directory``: the old index or the new, never half."""
    if directory.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.retired-", dir=directory.parent))
        os.replace(directory, retired / "index")
        os.replace(staging, directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, directory)
    _fsync_directory(directory.parent)


def write_json_durably(path: Path, value: dict[str, Any]) -> None:
    """Write JSON and fsync it before returning."""
    with path.open("w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
