"""The layers of docs/architecture.md, enforced: every leadline import runs downward.

The allowed direction is read from the document's tables, so the page and the code cannot drift: a new
package needs a row there, and an upward import fails here with the file and line that made it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "leadline"
DOC = ROOT / "docs" / "architecture.md"

# Imports the document says are on their way out, each with the branch that removes it. Nothing else.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement of a leadline module: where it is and what it names."""

    path: str
    line: int
    module: str


def _table(marker: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:.*?-->(.*?)<!-- /{marker} -->", text, re.S)
    assert found, f"docs/architecture.md lost its {marker} table"
    rows = [line for line in found.group(1).strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _names(cell: str) -> list[str]:
    """The backticked names of a cell, leaving out the parenthesised file lists."""
    return re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cell))


def layers() -> dict[str, int]:
    """Unit name (a subpackage or top-level module of leadline) -> its layer number."""
    return {name: int(row[0]) for row in _table("layers") for name in _names(row[1])}


def forbidden_third_party() -> dict[str, set[str]]:
    return {_names(row[0])[0]: set(_names(row[1])) for row in _table("third-party")}


def unit_of(module: str) -> str:
    """``leadline.budgets.curves`` -> ``budgets``; ``leadline.cli_runs`` -> ``cli``; ``leadline`` itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return "leadline"
    return "cli" if parts[1].startswith("cli") else parts[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[Import]:
    """Every import in the file, at any depth (function bodies and TYPE_CHECKING blocks included)."""
    rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "leadline":  # from leadline import errors -> the named submodules
                found += [Import(rel, node.lineno, f"leadline.{a.name}") for a in node.names]
            else:
                found.append(Import(rel, node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [Import(rel, node.lineno, a.name) for a in node.names]
    return found


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_the_document_names_every_package_once() -> None:
    table = _table("layers")
    named = [name for row in table for name in _names(row[1])]
    assert len(named) == len(set(named)), "a unit appears in two layers"
    present = {unit_of(module_name(p)) for p in library_files()}
    missing = present - set(named)
    assert not missing, f"docs/architecture.md gives no layer to {sorted(missing)}"


def test_imports_run_downward() -> None:
    rank = layers()
    upward = []
    for path in library_files():
        here = unit_of(module_name(path))
        for imp in imports(path):
            if not imp.module.startswith("leadline"):
                continue
            there = unit_of(imp.module)
            if there == here or (imp.path, there) in KNOWN_UPWARD:
                continue
            if rank[there] >= rank[here]:
                upward.append(f"{imp.path}:{imp.line} ({here}, layer {rank[here]}) imports {imp.module}")
    assert not upward, "imports against docs/architecture.md:\n" + "\n".join(upward)


def test_no_library_module_imports_the_testing_fakes() -> None:
    offenders = [
        f"{imp.path}:{imp.line}"
        for path in library_files()
        if unit_of(module_name(path)) != "testing"
        for imp in imports(path)
        if imp.module == "leadline.testing" or imp.module.startswith("leadline.testing.")
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("unit", sorted(forbidden_third_party()))
def test_third_party_packages_stay_in_their_layers(unit: str) -> None:
    banned = forbidden_third_party()[unit]
    offenders = [
        f"{imp.path}:{imp.line} imports {imp.module}"
        for path in sorted((PACKAGE / unit).rglob("*.py"))
        for imp in imports(path)
        if imp.module.split(".")[0] in banned
    ]
    assert not offenders, offenders


def test_the_known_upward_imports_are_still_the_only_ones_listed() -> None:
    # An entry may only excuse an import the document itself says is moving.
    text = DOC.read_text(encoding="utf-8")
    for path, _unit in KNOWN_UPWARD:
        if (ROOT / path).exists():
            assert path in text, f"{path} is excused here but docs/architecture.md does not say it moves"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The walk finds imports inside functions and under TYPE_CHECKING, the ones a grep of the top misses.
    probe = tmp_path / "probe.py"
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from leadline.api import Researcher\n"
    source += "def f():\n    from leadline.tools.base import SearchResult\n"
    probe.write_text(source, encoding="utf-8")
    found = [i.module for i in imports(probe)]
    assert found == ["typing", "leadline.api", "leadline.tools.base"]
    rank = layers()
    assert all(rank[unit_of(m)] > rank["storage"] for m in found[1:])
