"""The local corpus index: build, search, persistence, corruption, atomic rebuilds and corpus resolution."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.errors import ConfigError, CorpusIndexError
from leadline.tools.base import Reader, SearchBackend
from leadline.tools.corpus_index import (
    CorpusIndex,
    CorpusSearch,
    build_named_index,
    default_index_name,
    resolve_corpus,
)
from leadline.tools.passages import Passage

ROWS = [
    {
        "id": "otter",
        "title": "Sea otter",
        "text": "The sea otter is a marine mammal native to the North Pacific.",
    },
    {"id": "beaver", "title": "Beaver", "text": "Beavers build dams and lodges from branches in rivers."},
    {
        "id": "kelp",
        "title": "Kelp forest",
        "text": "Kelp forests grow in cold coastal water; otters eat urchins there.",
    },
    {
        "id": "dam",
        "title": "Hoover Dam",
        "text": "Hoover Dam is a concrete arch-gravity dam on the Colorado River.",
    },
    {
        "id": "gene",
        "title": "The Selfish Gene",
        "text": "The Selfish Gene is a 1976 book on evolution by Richard Dawkins.",
    },
    {
        "id": "oxford",
        "title": "Richard Dawkins",
        "text": "Dawkins studied zoology at Balliol College, Oxford.",
    },
]


def passages() -> list[Passage]:
    return [Passage(id=r["id"], title=r["title"], text=r["text"]) for r in ROWS]


def write_jsonl(path: Path, rows: list[dict[str, str]] = ROWS) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def built(tmp_path: Path) -> CorpusIndex:
    return CorpusIndex.build(passages(), tmp_path / "idx", name="animals")


def test_search_ranks_the_matching_passage_first(built: CorpusIndex) -> None:
    results = built.search("Which river is the Hoover Dam on?", k=3)
    assert results[0].doc_id == "dam"
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    top = results[0]
    assert top.backend == "local:animals"
    assert top.title == "Hoover Dam"
    assert top.text == ROWS[3]["text"]
    assert "Colorado" in top.snippet


def test_stemming_title_matches_and_k(built: CorpusIndex) -> None:
    # "otters" must match "otter" (stemming) and the title field counts as well as the text.
    ids = [r.doc_id for r in built.search("otters", k=5)]
    assert ids[0] == "otter" and "kelp" in ids
    assert len(built.search("otters", k=1)) == 1
    assert built.search("dawkins zoology college", k=1)[0].doc_id == "oxford"


def test_queries_without_terms_and_query_syntax_are_safe(built: CorpusIndex) -> None:
    assert built.search("   ") == []
    assert built.search("the of and is") == []  # only stopwords
    assert built.search("title:dam AND (river OR")[0].doc_id == "dam"  # no query language is parsed
    with pytest.raises(ConfigError):
        built.search("dam", k=0)


def test_get_returns_the_document_or_a_clear_error(built: CorpusIndex) -> None:
    document = built.get("beaver")
    assert document.title == "Beaver" and document.text == ROWS[1]["text"]
    assert document.metadata == {"corpus": "animals"}
    with pytest.raises(CorpusIndexError, match="no passage 'nope' in corpus 'animals'"):
        built.get("nope")


def test_index_persists_across_open(tmp_path: Path, built: CorpusIndex) -> None:
    before = [(r.doc_id, r.score) for r in built.search("otter kelp urchins", k=3)]
    reopened = CorpusIndex.open(tmp_path / "idx")
    assert len(reopened) == 6 and reopened.name == "animals"
    assert [(r.doc_id, r.score) for r in reopened.search("otter kelp urchins", k=3)] == before
    assert reopened.get("gene").title == "The Selfish Gene"


def test_build_reports_progress_and_rejects_bad_corpora(tmp_path: Path) -> None:
    seen: list[int] = []
    many = (Passage(id=f"p{i}", title="", text=f"word{i % 7} common text") for i in range(2500))
    index = CorpusIndex.build(many, tmp_path / "many", name="many", progress=seen.append)
    assert len(index) == 2500 and seen == [1000, 2000, 2500]
    with pytest.raises(ConfigError, match="no passages"):
        CorpusIndex.build([], tmp_path / "empty", name="empty")
    with pytest.raises(ConfigError, match="duplicate passage id 'otter'"):
        CorpusIndex.build([*passages(), passages()[0]], tmp_path / "dup", name="dup")
    with pytest.raises(ConfigError, match="invalid corpus name"):
        CorpusIndex.build(passages(), tmp_path / "x", name="../escape")
    assert not (tmp_path / "empty").exists() and not (tmp_path / "dup").exists()


def test_failed_rebuild_keeps_the_old_index_and_leaves_no_debris(tmp_path: Path, built: CorpusIndex) -> None:
    def crashing() -> Iterator[Passage]:
        yield Passage(id="new", title="New", text="replacement text")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        CorpusIndex.build(crashing(), tmp_path / "idx", name="animals")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    assert len(CorpusIndex.open(tmp_path / "idx")) == 6

    rebuilt = CorpusIndex.build(
        [Passage(id="new", title="New", text="replacement text")], tmp_path / "idx", name="v2"
    )
    assert len(rebuilt) == 1 and rebuilt.search("replacement")[0].doc_id == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_build_refuses_to_replace_a_directory_that_is_not_an_index(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work", encoding="utf-8")
    with pytest.raises(CorpusIndexError, match="refusing to replace"):
        CorpusIndex.build(passages(), precious, name="animals")
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "years of work"


def _largest_store_file(directory: Path) -> Path:
    return max(directory.rglob("*.store"), key=lambda p: p.stat().st_size)


def _damage(path: Path, data: bytes) -> None:
    # A new inode, as a disk or a copy would produce: rewriting the file in place would pull pages from
    # under the open index's memory map (SIGBUS), which is not the failure under test.
    scratch = path.with_name(path.name + ".damaged")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def test_truncated_file_is_a_corpus_index_error(tmp_path: Path, built: CorpusIndex) -> None:
    store = _largest_store_file(tmp_path / "idx")
    _damage(store, store.read_bytes()[:-10])
    with pytest.raises(CorpusIndexError, match=r"truncated\?"):
        CorpusIndex.open(tmp_path / "idx")


def test_garbled_file_of_the_same_size_fails_its_checksum(tmp_path: Path, built: CorpusIndex) -> None:
    store = _largest_store_file(tmp_path / "idx")
    data = bytearray(store.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _damage(store, bytes(data))
    with pytest.raises(CorpusIndexError, match="fails its checksum"):
        CorpusIndex.open(tmp_path / "idx")


def test_garbled_engine_metadata_without_verification_is_still_a_corpus_index_error(
    tmp_path: Path, built: CorpusIndex
) -> None:
    # Same size, so only the engine itself can notice; its error must still come out as ours.
    meta = tmp_path / "idx" / "tantivy" / "meta.json"
    _damage(meta, b"#" * meta.stat().st_size)
    with pytest.raises(CorpusIndexError, match="corrupt corpus index"):
        CorpusIndex.open(tmp_path / "idx", verify=False)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"\x00\xff garbage", "unreadable manifest"),
        (b"[1, 2]", "not a leadline corpus manifest"),
        (b'{"format": "leadline-corpus-index", "format_version": 99}', "upgrade leadline"),
        (b'{"format": "leadline-corpus-index", "format_version": 1, "files": {}}', "malformed manifest"),
    ],
)
def test_bad_manifest_is_a_corpus_index_error(
    tmp_path: Path, built: CorpusIndex, manifest: bytes, message: str
) -> None:
    _damage(tmp_path / "idx" / "manifest.json", manifest)
    with pytest.raises(CorpusIndexError, match=message):
        CorpusIndex.open(tmp_path / "idx")


def test_missing_index_or_file(tmp_path: Path, built: CorpusIndex) -> None:
    with pytest.raises(CorpusIndexError, match="no corpus index at"):
        CorpusIndex.open(tmp_path / "nowhere")
    (tmp_path / "idx" / "tantivy" / "meta.json").unlink()
    with pytest.raises(CorpusIndexError, match=r"meta\.json is missing"):
        CorpusIndex.open(tmp_path / "idx")


def test_corpus_search_is_an_async_backend_and_reader(built: CorpusIndex) -> None:
    backend = CorpusSearch(built)
    assert isinstance(backend, SearchBackend) and isinstance(backend, Reader)
    assert backend.name == "local:animals"

    async def scenario() -> tuple[list[list[str]], str]:
        queries = ["hoover dam", "sea otter", "selfish gene", "beaver lodges"] * 5
        batches = await asyncio.gather(*(backend.search(q, k=2) for q in queries))
        document = await backend.read(batches[0][0])
        await backend.aclose()
        return [[r.doc_id for r in batch] for batch in batches], document.text

    ids, text = asyncio.run(scenario())
    assert [batch[0] for batch in ids[:4]] == ["dam", "otter", "gene", "beaver"]
    assert ids[4:8] == ids[:4]
    assert text == ROWS[3]["text"]


def test_resolve_unknown_name_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(CorpusIndexError) as excinfo:
        resolve_corpus("wiki", tmp_path / "indexes")
    assert str(excinfo.value) == "unknown corpus 'wiki'; build it with: leadline index PATH --name wiki"
    with pytest.raises(CorpusIndexError, match="no corpus at"):
        resolve_corpus(str(tmp_path / "missing.jsonl"), tmp_path / "indexes")


def test_named_index_built_from_jsonl_then_resolved_by_name_and_path(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "animals.jsonl")
    indexes = tmp_path / "indexes"
    built = build_named_index(source, indexes, name="zoo")
    assert built.directory == indexes / "zoo"
    assert resolve_corpus("zoo", indexes).search("dawkins book")[0].doc_id == "gene"
    assert len(resolve_corpus(str(indexes / "zoo"), indexes)) == 6


def test_resolving_a_jsonl_path_builds_once_and_rebuilds_when_it_changes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "animals.jsonl")
    indexes = tmp_path / "indexes"
    first = resolve_corpus(str(source), indexes)
    assert first.directory.parent == indexes and first.name.startswith("animals-")
    again = resolve_corpus(str(source), indexes)
    assert again.manifest["built_at"] == first.manifest["built_at"]  # reused, not rebuilt

    write_jsonl(source, [*ROWS, {"id": "vole", "title": "Vole", "text": "Voles are small rodents."}])
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    changed = resolve_corpus(str(source), indexes)
    assert len(changed) == 7 and changed.directory == first.directory
    assert changed.search("voles")[0].doc_id == "vole"


def test_resolving_a_folder_path(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Lighthouses\n\nA lighthouse guides ships at night.\n", encoding="utf-8")
    (folder / "b.txt").write_text("Bread rises because yeast makes gas.\n", encoding="utf-8")
    index = resolve_corpus(str(folder), tmp_path / "indexes")
    top = index.search("why does bread rise", k=1)[0]
    assert top.doc_id == "b.txt" and top.title == "b"
    assert index.get("a.md").title == "Lighthouses"


def test_demo_corpus_resolves_builds_once_and_finds_gold_passages(tmp_path: Path) -> None:
    indexes = tmp_path / "indexes"
    demo = resolve_corpus("demo", indexes)
    assert len(demo) == 17530 and demo.name == "demo"
    results = demo.search(
        "What football club plays in the area between the old toll gates: Brook Bar and Trafford bar?"
    )
    assert {"doc_39011395b504dba3", "doc_4b2f71e1c552d8d9"} & {r.doc_id for r in results}
    assert resolve_corpus("demo", indexes).manifest["built_at"] == demo.manifest["built_at"]

    # A damaged demo index is ours to rebuild from the packaged corpus, not the user's problem.
    store = _largest_store_file(indexes / "demo")
    _damage(store, store.read_bytes()[:100])
    rebuilt = resolve_corpus("demo", indexes)
    assert len(rebuilt) == 17530 and rebuilt.manifest["built_at"] != demo.manifest["built_at"]


def test_demo_name_is_reserved_and_default_names(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "my corpus.v2.jsonl")
    with pytest.raises(ConfigError, match="reserved"):
        build_named_index(source, tmp_path / "indexes", name="demo")
    assert default_index_name("demo") == "demo"
    assert default_index_name(str(source)) == "my-corpus"
    assert default_index_name("/data/demo.jsonl") == "corpus"
