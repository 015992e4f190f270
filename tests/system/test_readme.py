"""The README stays true: its card table is the catalogue, its commands exist."""

from __future__ import annotations

import re

from cards.catalogue import Catalogue
from scripts.catalogue_table import table
from service.settings import ENV
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_card_table_matches_the_catalogue() -> None:
    assert table(Catalogue.load()) in README


def test_every_setting_is_documented() -> None:
    for variable, _ in ENV.values():
        assert f"| `{variable}` |" in README, variable


def test_the_two_commands_come_first() -> None:
    first_commands = README.index("make run")
    assert first_commands < README.index("curl -s") and "make test" in README[: first_commands + 200]


def test_files_the_readme_names_exist() -> None:
    root = ROOT
    for name in (
        "fixtures/requests/isotretinoin-2-months.json",
        "fixtures/requests/no-prefetch.json",
        "fixtures/patients/isotretinoin-2-months.json",
        "scripts/fhir_server.py",
        ".ci/run",
    ):
        assert (root / name).exists(), name


def test_every_link_to_a_section_finds_its_heading() -> None:
    """The contents line and other `(#anchor)` links, by GitHub's heading slugs."""
    headings = re.findall(r"^#+ (.+)$", README, flags=re.MULTILINE)
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= slugs, links - slugs
