"""Read the passages a local corpus is built from: a JSONL file or a folder of text, Markdown and HTML.

Both readers stream (generators), so indexing a million passages never holds them all in memory. Bad
input fails early with a :class:`~leadline.errors.ConfigError` that names the file and, for JSONL, the
line, because the user fixes these by editing their data, not their code.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from leadline.errors import ConfigError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
"""The file kinds a corpus folder may hold; everything else in the folder is skipped."""

_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Passage:
    """One searchable unit of a corpus. ``id`` is unique within the corpus and is what results cite."""

    id: str
    title: str
    text: str


def load_passages(source: Path | str) -> Iterator[Passage]:
    """Passages from a ``.jsonl`` / ``.jsonl.gz`` file or a folder, chosen by what ``source`` is."""
    path = Path(source).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        return load_jsonl(path)
    raise ConfigError(f"no corpus at {path}: expected a .jsonl file or a folder of .txt/.md/.html files")


def load_jsonl(path: Path | str) -> Iterator[Passage]:
    """Passages from JSON lines of ``{"id", "title", "text"}``; other fields are ignored, title is optional.

    The file is opened when iteration starts; a missing file or a bad line raises
    :class:`ConfigError` naming the line number (1-based).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"corpus file not found: {path}")
    return _iter_jsonl(path)


def _iter_jsonl(path: Path) -> Iterator[Passage]:
    with _open_text(path) as lines:
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                yield _passage_from_row(_parse_line(line, path, number), path, number)
        except (OSError, EOFError, UnicodeDecodeError) as exc:  # truncated gzip, binary file
            raise ConfigError(f"{path}: cannot read the file ({exc})") from exc


def _open_text(path: Path) -> IO[str]:
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8")
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot open corpus file {path}: {exc.strerror or exc}") from exc


def _parse_line(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise ConfigError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
    return row


def _passage_from_row(row: dict[str, Any], path: Path, number: int) -> Passage:
    doc_id, text, title = row.get("id"), row.get("text"), row.get("title")
    # Integer ids are common in exported corpora; booleans are not ids even though bool is an int.
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise ConfigError(f'{path}, line {number}: missing or empty "id" (a string)')
    if not isinstance(text, str):
        raise ConfigError(f'{path}, line {number}: missing "text" (a string)')
    if title is not None and not isinstance(title, str):
        raise ConfigError(f'{path}, line {number}: "title" must be a string')
    return Passage(id=doc_id, title=title or "", text=text)


def load_folder(root: Path | str) -> Iterator[Passage]:
    """One passage per ``.txt``/``.md``/``.html`` file under ``root`` (recursive, sorted, hidden skipped).

    The id is the path relative to ``root`` (POSIX separators); the title is the Markdown heading or the
    HTML ``<title>``, else the file stem. Files whose text is blank are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"corpus folder not found: {root}")
    return _iter_folder(root)


def corpus_files(root: Path) -> list[Path]:
    """The files of a corpus folder that :func:`load_folder` reads, in the order it reads them."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in TEXT_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _iter_folder(root: Path) -> Iterator[Passage]:
    for path in corpus_files(root):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        passage = passage_from_file(path.relative_to(root).as_posix(), path.suffix.lower(), raw)
        if passage.text.strip():
            yield passage


def passage_from_file(doc_id: str, suffix: str, raw: bytes) -> Passage:
    """Turn one file's bytes into a passage; ``suffix`` (".md", ".html", ...) decides how it is read."""
    content = raw.decode("utf-8", errors="replace")
    stem = Path(doc_id).stem
    if suffix in {".html", ".htm"}:
        title, text = _read_html(content)
        return Passage(id=doc_id, title=title or stem, text=text)
    if suffix in {".md", ".markdown"}:
        return Passage(id=doc_id, title=_markdown_title(content) or stem, text=content.strip())
    return Passage(id=doc_id, title=stem, text=content.strip())


def _markdown_title(content: str) -> str:
    for line in content.splitlines():
        match = _MARKDOWN_HEADING.match(line)
        if match:
            return match.group(1).strip()
    return ""


def _read_html(content: str) -> tuple[str, str]:
    """(title, main text) of an HTML page: trafilatura first, a plain tag stripper when it finds nothing."""
    import trafilatura  # imported here: it is slow to import and only folder corpora with HTML need it

    text = trafilatura.extract(content, include_comments=False, include_tables=True) or ""
    title = ""
    metadata = trafilatura.extract_metadata(content) if content.strip() else None
    if metadata is not None and metadata.title:
        title = metadata.title.strip()
    if not title:
        match = _HTML_TITLE.search(content)
        title = _collapse(_strip_tags(match.group(1))) if match else ""
    if not text.strip():
        text = _strip_tags(content)
    return title, text.strip()


class _TextCollector(HTMLParser):
    """Keeps the visible text of a page: everything outside script, style and template elements."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def _strip_tags(content: str) -> str:
    collector = _TextCollector()
    collector.feed(content)
    collector.close()
    lines = (_collapse(line) for line in "".join(collector.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _collapse(text: str) -> str:
    return " ".join(text.split())


__all__ = [
    "TEXT_SUFFIXES",
    "Passage",
    "corpus_files",
    "load_folder",
    "load_jsonl",
    "load_passages",
    "passage_from_file",
]
