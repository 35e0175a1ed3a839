"""Reading corpus sources: JSONL (plain and gzipped) and folders of text, Markdown and HTML."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from leadline.errors import ConfigError
from leadline.tools.demo import demo_corpus_path
from leadline.tools.passages import Passage, load_folder, load_jsonl, load_passages


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_jsonl_keeps_id_title_text_and_ignores_other_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "a", "title": "Alpha", "text": "first", "pool": "x", "score": 3},
            {"id": 7, "text": "no title here"},
        ],
    )
    assert list(load_jsonl(path)) == [
        Passage(id="a", title="Alpha", text="first"),
        Passage(id="7", title="", text="no title here"),
    ]


def test_jsonl_gz_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"id": "x", "title": "X", "text": "body"}\n\n   \n{"id": "y", "text": "two"}\n')
    assert [p.id for p in load_passages(path)] == ["x", "y"]


def test_jsonl_is_streamed_not_read_whole(tmp_path: Path) -> None:
    # The second line is broken: the first passage must come out before the error does.
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n{broken\n', encoding="utf-8")
    passages = load_jsonl(path)
    assert next(passages).id == "ok"
    with pytest.raises(ConfigError, match=r"line 2: not valid JSON"):
        next(passages)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('["a", "list"]', r"line 2: expected a JSON object, got list"),
        ('{"title": "t", "text": "x"}', r"line 2: missing or empty \"id\""),
        ('{"id": "b", "title": "t"}', r"line 2: missing \"text\""),
        ('{"id": "b", "title": 5, "text": "x"}', r"line 2: \"title\" must be a string"),
        ('{"id": true, "text": "x"}', r"line 2: missing or empty \"id\""),
    ],
)
def test_jsonl_bad_rows_name_their_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        list(load_jsonl(path))


def test_missing_sources_fail_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus file not found"):
        load_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="corpus folder not found"):
        load_folder(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no corpus at"):
        load_passages(tmp_path / "nope")


def test_truncated_gzip_is_a_config_error(tmp_path: Path) -> None:
    full = gzip.compress(b"".join(b'{"id": "%d", "text": "passage text"}\n' % i for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ConfigError, match="cannot read the file"):
        list(load_jsonl(path))


def test_folder_reads_txt_md_html_with_titles_and_relative_ids(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "plain.txt").write_text("Just some words about otters.\n", encoding="utf-8")
    (tmp_path / "guide.md").write_text(
        "Intro line\n\n## Setting Up Otters\n\nOtters need water.\n", encoding="utf-8"
    )
    article = " ".join(["Beavers build dams across rivers and streams to make ponds."] * 8)
    (tmp_path / "page.html").write_text(
        "<html><head><title>Beaver facts</title><script>var x = 'hidden script';</script></head>"
        "<body><nav>Home | About</nav><article><h1>Beaver facts</h1>"
        f"<p>{article}</p></article></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.txt").write_text("do not index", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")

    passages = {p.id: p for p in load_folder(tmp_path)}

    assert sorted(passages) == ["guide.md", "notes/plain.txt", "page.html"]
    assert passages["notes/plain.txt"].title == "plain"
    assert passages["notes/plain.txt"].text == "Just some words about otters."
    assert passages["guide.md"].title == "Setting Up Otters"
    assert "Otters need water." in passages["guide.md"].text
    assert passages["page.html"].title == "Beaver facts"
    assert "Beavers build dams" in passages["page.html"].text
    assert "hidden script" not in passages["page.html"].text


def test_html_fallback_when_extraction_finds_nothing(tmp_path: Path) -> None:
    # Too short for trafilatura's main-content heuristics: the plain stripper must still give the text.
    (tmp_path / "tiny.html").write_text(
        "<html><head><style>p{color:red}</style></head><body><p>Short note on voles.</p></body></html>",
        encoding="utf-8",
    )
    (passage,) = load_folder(tmp_path)
    assert passage.title == "tiny"
    assert "Short note on voles." in passage.text
    assert "color" not in passage.text


def test_packaged_demo_corpus_is_readable() -> None:
    passages = load_passages(demo_corpus_path())
    first = next(passages)
    assert first.id.startswith("doc_") and first.title and first.text
    assert sum(1 for _ in passages) + 1 == 17530
