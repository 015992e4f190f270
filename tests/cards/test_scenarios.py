"""Clinical scenarios, data-driven: every tests/scenarios/*.yaml through the engine.

Each YAML file says what a dermatologist expects for one fixture patient (fixtures/patients/,
written against the fixture date 2026-11-26): which cards, at which indicator, saying which
phrases, and which one-click orders must be offered or must be absent (tests/support/scenarios.py
checks them). Here every scenario runs through the engine directly
(cards.engine.Engine.evaluate_resources); tests/service/test_scenarios_over_http.py runs the same
scenarios over HTTP and through the CLI.

Suggestions are named by what they order: a ServiceRequest by its code in the local
acne-scar-procedure CodeSystem ("tca-cross", "punch-excision", ...), a MedicationRequest as
"retinoid".

Scenarios the engine currently gets clinically wrong (GUIDELINE.md) are listed in KNOWN_DEFECTS
and marked xfail(strict=True): fixing the engine turns them into failures that ask for the mark
to be removed.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from cards.engine import Engine
from tests.support.paths import load_json
from tests.support.scenarios import (
    ALL,
    CARD_KEYS,
    OPTIONAL_KEYS,
    PATIENTS,
    REQUESTS,
    REQUIRED_KEYS,
    RETINOID,
    check,
    engine_cards,
    params,
    procedure_codes,
)

# -- the scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", params())
def test_scenario_engine(scenario: dict[str, Any], engine: Engine) -> None:
    """The engine, called directly with the fixture's resources and the scenario's today."""
    patient_id, cards = engine_cards(engine, scenario)
    check(scenario, cards, patient_id)


# -- the scenario files, the fixtures and the generated requests ---------------------------------


@pytest.mark.parametrize("name,scenario", ALL, ids=[name for name, _ in ALL])
def test_scenario_is_well_formed(name: str, scenario: dict[str, Any], engine: Engine) -> None:
    """A typo in a scenario must fail, not make an expectation vacuous."""
    assert scenario.keys() >= REQUIRED_KEYS, f"missing {REQUIRED_KEYS - scenario.keys()}"
    assert not scenario.keys() - REQUIRED_KEYS - OPTIONAL_KEYS, "unknown keys"
    assert scenario["fixture"] == name
    assert scenario["today"] == date(2026, 11, 26)
    rules = scenario["rule"] if isinstance(scenario["rule"], list) else [scenario["rule"]]
    assert all(re.fullmatch(r"R[1-8]", r) for r in rules), rules
    assert (PATIENTS / f"{name}.json").exists() and (REQUESTS / f"{name}.json").exists()
    for card in scenario["cards"]:
        assert not card.keys() - CARD_KEYS, f"unknown card keys {card.keys() - CARD_KEYS}"
        assert card["card"] in engine.catalogue.cards, card["card"]
        assert card["indicator"] == engine.catalogue[card["card"]].indicator
    known = procedure_codes(engine) | {RETINOID}
    for key in ("suggested", "not_suggested", "first_suggested"):
        assert not set(scenario.get(key, [])) - known, f"{key}: unknown codes"
    assert not set(scenario.get("suggested", [])) & set(scenario.get("not_suggested", []))


def test_every_fixture_has_a_scenario() -> None:
    assert {p.stem for p in PATIENTS.glob("*.json")} == {name for name, _ in ALL}


@pytest.mark.parametrize("path", sorted(PATIENTS.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_is_a_valid_patient_bundle(path: Path) -> None:
    """FHIR R4 (validated with the R4B models), one Patient named after the file, every
    resource about that patient, and full URLs that match type and id."""
    data = load_json(path)
    Bundle.model_validate(data)
    assert data["type"] == "collection"
    resources = [entry["resource"] for entry in data["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert [p["id"] for p in patients] == [path.stem]
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(keys) == len(set(keys)), "duplicate resource ids"
    for entry in data["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
        if resource["resourceType"] not in ("Patient", "Medication"):  # a Medication is no one's
            subject = resource.get("subject") or resource.get("patient")
            assert subject == {"reference": f"Patient/{path.stem}"}, resource["id"]
    if path.stem == "large-record":
        assert 450 <= len(resources) <= 600
    if path.stem == "typical-record":
        assert 25 <= len(resources) <= 40


def test_resource_ids_are_unique_across_fixtures() -> None:
    """Fixtures can be loaded together into one FHIR server (integration tests, demo)."""
    seen: dict[str, str] = {}
    for path in sorted(PATIENTS.glob("*.json")):
        for entry in load_json(path)["entry"]:
            key = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            assert key not in seen, f"{key} is in both {seen.get(key)} and {path.name}"
            seen[key] = path.name
