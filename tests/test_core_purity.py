"""DESIGN §The house: `cards` never imports `service`, Flask, requests or a database."""

from __future__ import annotations

import ast
from pathlib import Path

CARDS = Path(__file__).resolve().parent.parent / "cards"
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
