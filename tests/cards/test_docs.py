"""A clone is complete: the project carries its own clinical specification (docs/), and nothing in
the repository points at the folder beside it that only the original workspace has (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from cards.catalogue import Catalogue
from tests.support.paths import ROOT

SPEC = ROOT / "docs" / "clinical-specification.md"
# Paths that exist only next to the original checkout, never in a clone.
OUTSIDE = ("../shared", "shared/clinical")
FILES = (ROOT / "README.md", ROOT / "fixtures" / "README.md")
FOLDERS = ("cards", "service", "scripts", "tests", "docs")


def _repository_texts() -> Iterator[tuple[Path, str]]:
    paths = [*FILES, *(p for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*")))]
    for path in paths:
        if not path.is_file() or "__pycache__" in path.parts or path == Path(__file__).resolve():
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary files name no paths a reader follows
            continue


def test_nothing_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in _repository_texts()
        for number, line in enumerate(text.splitlines(), start=1)
        if any(outside in line for outside in OUTSIDE)
    ]
    assert not offenders, "a clone has no such folder; point at docs/ instead:\n" + "\n".join(offenders)


def test_the_specification_names_every_card_and_every_reference() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    evidence = yaml.safe_load((ROOT / "cards" / "content" / "evidence.yaml").read_text(encoding="utf-8"))
    missing = [f"card `{card}`" for card in Catalogue.load().cards if f"`{card}`" not in spec]
    missing += [f"evidence {key!r}" for key in evidence if key not in spec]
    assert not missing, "docs/clinical-specification.md does not describe: " + ", ".join(missing)


def test_the_specification_says_which_guideline_version_it_follows() -> None:
    head = SPEC.read_text(encoding="utf-8")[:600]
    assert "guideline v2" in head and "2026-12-01" in head
