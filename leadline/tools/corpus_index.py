"""The local corpus: a persistent BM25 index over passages, the embedded default search backend.

The engine is tantivy (Rust, block-max WAND), chosen over bm25s by measurement (docs/corpus-index.md):
at 200k passages bm25s's query p95 was already ~48 ms while tantivy stayed near 1 ms, and tantivy keeps
its postings and document store on disk (memory-mapped) instead of in Python lists.

An index is a directory: ``tantivy/`` (segments, including the compressed document store) and
``manifest.json`` (format version, passage count, size and sha256 of every file, where it came from;
its reading, checking and durable writing are :mod:`leadline.tools.index_files`).
:meth:`CorpusIndex.open` checks the manifest before it hands tantivy a single byte, so a truncated or
garbled index is a :class:`~leadline.errors.CorpusIndexError`, never a traceback from inside the engine.
:meth:`CorpusIndex.build` writes into a temporary sibling directory and renames it into place, so a
crash leaves the old index or none, never half of one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import tantivy

from leadline.errors import ConfigError, CorpusIndexError
from leadline.tools.base import Document, SearchResult
from leadline.tools.demo import demo_corpus_path
from leadline.tools.index_files import (
    ANALYZER,
    FORMAT_VERSION,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    check_files,
    describe_files,
    move_into_place,
    read_manifest,
    refuse_foreign_directory,
    write_json_durably,
)
from leadline.tools.passages import Passage, corpus_files, load_passages
from leadline.tools.title_links import TitleLinks

SNIPPET_CHARS = 280
MAX_QUERY_TERMS = 128
"""Terms past this are dropped: a pasted page as a query should cost milliseconds, not seconds."""

_ENGINE_DIR = "tantivy"
_ANALYZER_NAME = "leadline_en"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_WRITER_HEAP_BYTES = 128_000_000
_PROGRESS_EVERY = 1000
_SOURCE_SUFFIXES = frozenset({".jsonl", ".json", ".gz", ".txt", ".md", ".markdown", ".html", ".htm"})


def _analyzer() -> tantivy.TextAnalyzer:
    # Same steps as ANALYZER says; queries go through this very object, so terms match the postings.
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    # Title and text are separate fields, each with its own BM25 length norm: on the training questions
    # this beat one concatenated field (recall@5 0.633 vs 0.613, see docs/corpus-index.md).
    builder.add_text_field("title", stored=True, tokenizer_name=_ANALYZER_NAME, index_option="freq")
    builder.add_text_field("text", stored=True, tokenizer_name=_ANALYZER_NAME, index_option="position")
    return builder.build()


def validate_index_name(name: str) -> str:
    """Return ``name`` if it can name an index directory (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME_PATTERN.match(name) or name in {".", ".."}:
        raise ConfigError(
            f"invalid corpus name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter"
            " or digit"
        )
    return name


class CorpusIndex:
    """A built, immutable BM25 index over passages; searches take milliseconds at a million passages."""

    def __init__(self, directory: Path, manifest: dict[str, Any], index: tantivy.Index) -> None:
        """Use :meth:`open` or :meth:`build`; this only wires already-verified parts together."""
        self.directory = directory
        self.manifest = manifest
        self.name: str = manifest["name"]
        self._index = index
        self._schema = index.schema
        self._analyzer = _analyzer()
        self._searcher = index.searcher()
        self._links: TitleLinks | None = None

    # -- building -------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        passages: Iterable[Passage],
        directory: Path,
        *,
        name: str,
        source: dict[str, Any] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> CorpusIndex:
        """Index ``passages`` into ``directory`` (replacing an index there) and open the result.

        ``source`` is stored in the manifest (what the corpus was built from, for reuse checks);
        ``progress`` is called with the number of passages indexed so far, every thousand and at the end.
        Raises :class:`ConfigError` for an empty corpus or a duplicate passage id.
        """
        validate_index_name(name)
        directory = Path(directory)
        refuse_foreign_directory(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.building-", dir=directory.parent))
        try:
            started = time.monotonic()
            count = _write_engine(passages, staging / _ENGINE_DIR, progress)
            manifest = {
                "format": MANIFEST_FORMAT,
                "format_version": FORMAT_VERSION,
                "name": name,
                "engine": "tantivy",
                "engine_version": getattr(tantivy, "__version__", "unknown"),
                "analyzer": ANALYZER,
                "passage_count": count,
                "built_at": time.time(),
                "build_seconds": round(time.monotonic() - started, 3),
                "source": source or {},
                "files": describe_files(staging),
            }
            write_json_durably(staging / MANIFEST_NAME, manifest)
            move_into_place(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(directory, verify=False)

    # -- opening ----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, *, verify: bool = True) -> CorpusIndex:
        """Open a built index. ``verify`` re-hashes every file against the manifest (about 1 s per GB);
        sizes, versions and the passage count are always checked."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        check_files(directory, manifest, verify=verify)
        engine_dir = directory / _ENGINE_DIR
        try:
            index = tantivy.Index.open(str(engine_dir))
            index.register_tokenizer(_ANALYZER_NAME, _analyzer())
            index.reload()
            num_docs = index.searcher().num_docs
        except Exception as exc:  # the engine's errors are untyped; any of them means an unusable index
            raise CorpusIndexError(f"corrupt corpus index at {directory}: {exc}") from exc
        if num_docs != manifest["passage_count"]:
            raise CorpusIndexError(
                f"corrupt corpus index at {directory}: {num_docs} passages, manifest says "
                f"{manifest['passage_count']}; rebuild it"
            )
        return cls(directory, manifest, index)

    # -- reading ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.manifest["passage_count"])

    def __repr__(self) -> str:
        return f"CorpusIndex(name={self.name!r}, passages={len(self)}, directory={str(self.directory)!r})"

    @property
    def backend(self) -> str:
        """The ``backend`` label of this index's results."""
        return f"local:{self.name}"

    def search(self, query: str, k: int = 5) -> list[SearchResult]:
        """The ``k`` best passages for ``query`` by BM25 over title and text (no query syntax: any string
        is safe). A query with no indexable word (blank, only stopwords) returns no results."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        terms = list(dict.fromkeys(self._analyzer.analyze(query)))[:MAX_QUERY_TERMS]
        if not terms:
            return []
        engine_query = self._terms_query(terms)
        try:
            hits = self._searcher.search(engine_query, limit=k, count=False).hits
            snippets = tantivy.SnippetGenerator.create(self._searcher, engine_query, self._schema, "text")
            snippets.set_max_num_chars(SNIPPET_CHARS)
            results = []
            for rank, (score, address) in enumerate(hits, start=1):
                stored = self._searcher.doc(address)
                text = stored.get_first("text") or ""
                snippet = snippets.snippet_from_doc(stored).fragment().strip() or _leading_snippet(text)
                results.append(
                    SearchResult(
                        doc_id=str(stored.get_first("id")),
                        title=stored.get_first("title") or "",
                        snippet=snippet,
                        score=float(score),
                        rank=rank,
                        backend=self.backend,
                        text=text,
                    )
                )
        except (ValueError, OSError, RuntimeError) as exc:
            raise CorpusIndexError(f"corpus index {self.name!r} failed to search: {exc}") from exc
        return results

    def linked(self, query: str, named_by: Sequence[SearchResult], *, n: int) -> list[SearchResult]:
        """Up to ``n`` passages that the passages ``named_by`` link to (:mod:`leadline.tools.title_links`),
        best first by ``query``'s BM25 score, ties by first mention; not those passages themselves, nor
        the passages whose title ``query`` names. Each result's ``linked_from`` is the id of the first
        passage that names it; ranks go on from the last of ``named_by``. The title table is built on
        first use (one pass over the stored titles)."""
        if n < 1 or not named_by:
            return []
        links = self._title_links()
        own = {r.doc_id for r in named_by}
        by = links.linked_by([r.text or r.snippet for r in named_by], named_by_query=query)
        source = {doc_id: named_by[i].doc_id for doc_id, i in by.items() if doc_id not in own}
        if not source:
            return []
        order = {doc_id: i for i, doc_id in enumerate(source)}
        terms = list(dict.fromkeys(self._analyzer.analyze(query)))[:MAX_QUERY_TERMS]
        only = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self._schema, "id", list(source)), 0.0
        )
        clauses = [(tantivy.Occur.Must, only)]
        if terms:
            clauses.append((tantivy.Occur.Should, self._terms_query(terms)))
        try:
            hits = self._searcher.search(
                tantivy.Query.boolean_query(clauses), limit=len(source), count=False
            ).hits
            rows = [(float(score), self._searcher.doc(address)) for score, address in hits]
        except (ValueError, OSError, RuntimeError) as exc:
            raise CorpusIndexError(f"corpus index {self.name!r} failed to follow links: {exc}") from exc
        rows.sort(key=lambda row: (-row[0], order[str(row[1].get_first("id"))]))
        results = []
        for rank, (score, stored) in enumerate(rows[:n], start=len(named_by) + 1):
            doc_id = str(stored.get_first("id"))
            text = stored.get_first("text") or ""
            results.append(
                SearchResult(
                    doc_id=doc_id,
                    title=stored.get_first("title") or "",
                    snippet=_leading_snippet(text),
                    score=score,
                    rank=rank,
                    backend=self.backend,
                    text=text,
                    linked_from=source[doc_id],
                )
            )
        return results

    def _title_links(self) -> TitleLinks:
        if self._links is None:
            try:
                everything = self._searcher.search(tantivy.Query.all_query(), limit=len(self), count=False)
                titles = []
                for _, address in everything.hits:
                    stored = self._searcher.doc(address)
                    titles.append((stored.get_first("title") or "", str(stored.get_first("id"))))
            except (ValueError, OSError, RuntimeError) as exc:
                raise CorpusIndexError(
                    f"corpus index {self.name!r} failed to read its titles: {exc}"
                ) from exc
            self._links = TitleLinks(titles)
        return self._links

    def get(self, doc_id: str) -> Document:
        """The passage with this id, as a :class:`Document`; :class:`CorpusIndexError` if there is none."""
        query = tantivy.Query.term_query(self._schema, "id", doc_id)
        try:
            hits = self._searcher.search(query, limit=1, count=False).hits
            stored = self._searcher.doc(hits[0][1]) if hits else None
        except (ValueError, OSError, RuntimeError) as exc:
            raise CorpusIndexError(f"corpus index {self.name!r} failed to read {doc_id!r}: {exc}") from exc
        if stored is None:
            raise CorpusIndexError(f"no passage {doc_id!r} in corpus {self.name!r}")
        return Document(
            doc_id=doc_id,
            title=stored.get_first("title") or "",
            text=stored.get_first("text") or "",
            metadata={"corpus": self.name},
        )

    def _terms_query(self, terms: list[str]) -> tantivy.Query:
        # One flat disjunction of (field, term) clauses scores the same as grouping per term, but only the
        # flat form gets tantivy's block-max WAND: p95 0.3 ms instead of 4-8 ms on the demo corpus.
        should = tantivy.Occur.Should
        return tantivy.Query.boolean_query(
            [
                (should, tantivy.Query.term_query(self._schema, field, term))
                for term in terms
                for field in ("title", "text")
            ]
        )


class CorpusSearch:
    """A :class:`CorpusIndex` as an async search backend and reader (queries run in a worker thread)."""

    def __init__(self, index: CorpusIndex) -> None:
        self.index = index
        self.name = index.backend

    follows_links = True
    """Searches can bring the passages their results link to (``links``)."""

    async def search(self, query: str, *, k: int = 5, links: int = 0) -> list[SearchResult]:
        """Search the index in a thread (tantivy is synchronous); with ``links``, the top ``k`` are
        followed by up to that many passages they link to (:meth:`CorpusIndex.linked`)."""
        return await asyncio.to_thread(self._search, query, k, links)

    def _search(self, query: str, k: int, links: int) -> list[SearchResult]:
        results = self.index.search(query, k)
        return results + self.index.linked(query, results, n=links) if links > 0 else results

    async def read(self, result: SearchResult) -> Document:
        """The full passage behind ``result``, from the index (not from the result's copy)."""
        return await asyncio.to_thread(self.index.get, result.doc_id)

    async def aclose(self) -> None:
        """Nothing to release: the index is memory-mapped and read-only."""


# -- naming and resolving ---------------------------------------------------------------------------------


def build_named_index(
    source: Path | str,
    indexes_dir: Path,
    *,
    name: str,
    progress: Callable[[int], None] | None = None,
) -> CorpusIndex:
    """Build ``indexes_dir/name`` from a JSONL file, a folder, or ``"demo"`` (the packaged corpus).

    This is what ``leadline index PATH --name NAME`` runs; an existing index of that name is replaced.
    The name ``demo`` belongs to the packaged corpus (``resolve_corpus("demo")`` rebuilds it from there).
    """
    validate_index_name(name)
    path = demo_corpus_path().resolve() if str(source) == "demo" else Path(source).expanduser().resolve()
    if name == "demo" and path != demo_corpus_path().resolve():
        raise ConfigError(
            "the corpus name 'demo' is reserved for the packaged demo corpus; pick another --name"
        )
    fingerprint = source_fingerprint(path)
    return CorpusIndex.build(
        load_passages(path),
        Path(indexes_dir) / name,
        name=name,
        source={"path": str(path), "fingerprint": fingerprint},
        progress=progress,
    )


def default_index_name(source: str) -> str:
    """The name ``leadline index SOURCE`` uses without ``--name``: ``demo``, or the source's file stem."""
    if source == "demo":
        return "demo"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).name.split(".")[0]).strip("-.")[:64]
    return stem if stem and stem != "demo" else "corpus"


def resolve_corpus(name_or_path: str, indexes_dir: Path) -> CorpusIndex:
    """The index a ``--corpus`` value means, building it when that is cheap and unambiguous.

    - ``"demo"``: ``indexes_dir/demo``, built from the packaged corpus on first use (and rebuilt when the
      package's corpus changed or the index is damaged);
    - a bare name: the index ``indexes_dir/NAME`` built earlier with ``leadline index``;
    - a path to an index directory: that index;
    - a path to a JSONL file or a folder: an index in ``indexes_dir`` named after the path, built on first
      use and reused while the source's size and modification time are unchanged.
    """
    indexes_dir = Path(indexes_dir)
    if name_or_path == "demo":
        return _open_or_build(demo_corpus_path(), indexes_dir, "demo")
    is_bare_name = bool(_NAME_PATTERN.match(name_or_path)) and os.sep not in name_or_path
    if is_bare_name and (indexes_dir / name_or_path / MANIFEST_NAME).is_file():
        return CorpusIndex.open(indexes_dir / name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return CorpusIndex.open(path)
    if path.exists():
        resolved = path.resolve()
        return _open_or_build(resolved, indexes_dir, _derived_name(resolved))
    if is_bare_name and path.suffix.lower() not in _SOURCE_SUFFIXES:
        raise CorpusIndexError(
            f"unknown corpus {name_or_path!r}; build it with: leadline index PATH --name {name_or_path}"
        )
    raise CorpusIndexError(f"no corpus at {path}: not a file, a folder or a built index")


def source_fingerprint(path: Path) -> str:
    """A cheap change detector for a corpus source: sizes and modification times (of every corpus file,
    for a folder). Content is not hashed: re-reading a large corpus to decide reuse would cost as much
    as rebuilding."""
    digest = hashlib.sha256()
    files = corpus_files(path) if path.is_dir() else [path]
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(path) if path.is_dir() else file.name}\0{stat.st_size}\0".encode())
        digest.update(f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _open_or_build(source: Path, indexes_dir: Path, name: str) -> CorpusIndex:
    directory = indexes_dir / name
    if (directory / MANIFEST_NAME).is_file():
        try:
            index = CorpusIndex.open(directory)
        except CorpusIndexError:
            index = None  # damaged or from an older format: rebuilt from its source below
        if index is not None and index.manifest.get("source", {}).get("fingerprint") == source_fingerprint(
            source
        ):
            return index
    return build_named_index(source, indexes_dir, name=name)


def _derived_name(path: Path) -> str:
    # The stem keeps the name readable; the hash of the full path keeps two "corpus.jsonl"s apart.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name.split(".")[0]).strip("-.") or "corpus"
    return f"{stem[:40]}-{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"


# -- writing the engine ------------------------------------------------------------------------------------


def _write_engine(
    passages: Iterable[Passage], engine_dir: Path, progress: Callable[[int], None] | None
) -> int:
    engine_dir.mkdir()
    index = tantivy.Index(_schema(), path=str(engine_dir))
    index.register_tokenizer(_ANALYZER_NAME, _analyzer())
    threads = max(1, min(4, os.cpu_count() or 1))
    writer = index.writer(heap_size=_WRITER_HEAP_BYTES, num_threads=threads)
    seen: set[str] = set()
    count = 0
    try:
        for passage in passages:
            if passage.id in seen:
                raise ConfigError(f"duplicate passage id {passage.id!r}: ids must be unique within a corpus")
            seen.add(passage.id)
            writer.add_document(tantivy.Document(id=passage.id, title=passage.title, text=passage.text))
            count += 1
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(count)
        if count == 0:
            raise ConfigError("the corpus has no passages; nothing to index")
        writer.commit()
        writer.wait_merging_threads()
    finally:
        # Dropping the writer joins its threads, which may otherwise still write into the staging directory
        # the caller is about to delete; the traceback of a failure would keep this frame, so drop it here.
        del writer
    if progress is not None and count % _PROGRESS_EVERY:
        progress(count)
    return count


def _leading_snippet(text: str) -> str:
    if len(text) <= SNIPPET_CHARS:
        return text.strip()
    cut = text.rfind(" ", 0, SNIPPET_CHARS)
    return text[: cut if cut > 0 else SNIPPET_CHARS].strip() + " …"


__all__ = [
    "FORMAT_VERSION",
    "CorpusIndex",
    "CorpusSearch",
    "build_named_index",
    "default_index_name",
    "resolve_corpus",
    "source_fingerprint",
    "validate_index_name",
]
