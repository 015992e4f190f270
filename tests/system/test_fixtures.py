"""The generated fixtures are what scripts/make_fixtures.py writes: the large record, the hook
requests and the order requests (run `make fixtures` after changing a patient or a case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import make_fixtures
from tests.support.scenarios import PATIENTS, REQUESTS

ORDERS = make_fixtures.ORDERS
FIXTURE_NAMES = sorted(p.stem for p in ORDERS.glob("*.json"))


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    return make_fixtures.wanted()


def test_requests_are_up_to_date(generated: dict[Path, str]) -> None:
    """fixtures/requests is what the generator writes (run `make fixtures`)."""
    wanted = {p.name: text for p, text in generated.items() if p.parent == REQUESTS}
    assert {f"{p.stem}.json" for p in PATIENTS.glob("*.json")} | {"no-prefetch.json"} == set(wanted)
    stale = [p.name for p in make_fixtures.stale(generated) if p.parent == REQUESTS]
    assert not stale, f"out of date, run `make fixtures`: {stale}"


def test_large_fixture_is_up_to_date(generated: dict[Path, str]) -> None:
    """fixtures/patients/large-record.json is what the generator writes."""
    text = generated[PATIENTS / "large-record.json"]
    assert (PATIENTS / "large-record.json").read_text(encoding="utf-8") == text


def test_fixtures_are_up_to_date(generated: dict[Path, str]) -> None:
    """fixtures/orders is what the generator writes, and its --check (what CI and a reviewer
    run) finds every generated fixture up to date."""
    wanted = {p.name: text for p, text in generated.items() if p.parent == ORDERS}
    assert set(wanted) == {f"{n}.json" for n in FIXTURE_NAMES}
    assert [p for p in make_fixtures.stale(generated) if p.parent == ORDERS] == [], "run make fixtures"
    assert make_fixtures.main(["--check"]) == 0
