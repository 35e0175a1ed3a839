"""Every public name in leadline has a docstring.

Public: a module-level function or class whose name does not start with ``_``, and the methods of such a
class whose names do not start with ``_``. ``@overload`` stubs are left out (the implementation carries
the docstring), and so are the migrations, which are generated code.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "leadline"

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_overload(node: Definition) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in node.decorator_list
    )


def public_definitions(tree: ast.Module) -> list[tuple[str, Definition]]:
    """(qualified name, node) of each public module-level function and class and their public methods."""
    found: list[tuple[str, Definition]] = []
    for node in tree.body:
        if not isinstance(node, Definition) or node.name.startswith("_") or _is_overload(node):
            continue
        found.append((node.name, node))
        if isinstance(node, ast.ClassDef):
            found += [
                (f"{node.name}.{item.name}", item)
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and not item.name.startswith("_")
                and not _is_overload(item)
            ]
    return found


def missing_docstrings() -> list[str]:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(PACKAGE.parent)
        missing += [
            f"{rel}:{node.lineno} {name}"
            for name, node in public_definitions(tree)
            if not ast.get_docstring(node)
        ]
    return missing


def test_every_public_name_has_a_docstring() -> None:
    missing = missing_docstrings()
    assert not missing, f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_the_counter_sees_functions_classes_and_methods() -> None:
    tree = ast.parse(
        "def f():\n    pass\n"
        "class C:\n    '''doc'''\n    def m(self):\n        pass\n    def _p(self):\n        pass\n"
        "def _private():\n    pass\n"
        "from typing import overload\n@overload\ndef g(x: int) -> int: ...\n"
    )
    names = [name for name, node in public_definitions(tree) if not ast.get_docstring(node)]
    assert names == ["f", "C.m"]
