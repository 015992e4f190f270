"""DESIGN §The house: `cards` never imports `service`, Flask, requests or a database."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import ROOT

CARDS = ROOT / "cards"
FORBIDDEN = {"service", "flask", "requests", "werkzeug", "sqlalchemy", "urllib3", "socket", "http"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_clinical_core_does_no_io_imports() -> None:
    offenders = {
        str(path.relative_to(CARDS)): sorted(imported_modules(path) & FORBIDDEN)
        for path in CARDS.rglob("*.py")
        if imported_modules(path) & FORBIDDEN
    }
    assert offenders == {}


def test_the_cores_tests_do_not_import_the_service() -> None:
    """The core is tested without the adapter: tests/cards, and the test modules they use."""
    seen: set[Path] = set()
    todo = sorted((ROOT / "tests" / "cards").glob("*.py"))
    while todo:
        path = todo.pop()
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests."):
                used = ROOT / (node.module.replace(".", "/") + ".py")
                if used.exists() and used not in seen:
                    todo.append(used)
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported_modules(p) & {"service", "flask"})
        for p in seen
        if imported_modules(p) & {"service", "flask"}
    }
    assert len(seen) > 5 and offenders == {}
