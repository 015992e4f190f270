"""Clinical scenarios, data-driven: every tests/scenarios/*.yaml, run two ways.

Each YAML file says what a dermatologist expects for one fixture patient (fixtures/patients/,
written against the fixture date 2026-11-26): which cards, at which indicator, saying which
phrases, and which one-click orders must be offered or must be absent. Every scenario runs
  (a) through the engine directly (cards.engine.Engine.evaluate_resources), and
  (b) over HTTP: fixtures/requests/<name>.json posted to the service (Flask test client).
Over HTTP a card does not carry its catalogue id, so it is recognised by its summary (the
catalogue's summary template) and indicator.

Suggestions are named by what they order: a ServiceRequest by its code in the local
acne-scar-procedure CodeSystem ("tca-cross", "punch-excision", ...), a MedicationRequest as
"retinoid".

Scenarios the engine currently gets clinically wrong (GUIDELINE.md) are listed in KNOWN_DEFECTS
and marked xfail(strict=True): fixing the engine turns them into failures that ask for the mark
to be removed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fhir.resources.R4B.bundle import Bundle
from flask.testing import FlaskClient

from cards.engine import Engine
from cards.resources import RawResource
from tests.conftest import FIXTURE_TODAY, FIXTURES, ROOT, load_json

SCENARIOS = Path(__file__).parent / "scenarios"
PATIENTS = FIXTURES / "patients"
REQUESTS = FIXTURES / "requests"
SERVICE_URL = "/cds-services/acne-scar-treatment"
SEVERITY = {"critical": 0, "warning": 1, "info": 2}
RETINOID = "retinoid"
REQUIRED_KEYS = {"fixture", "today", "rule", "cards", "no_cards_other_than_listed"}
OPTIONAL_KEYS = {"description", "suggested", "not_suggested", "first_suggested"}
CARD_KEYS = {"card", "indicator", "summary_contains", "detail_contains", "detail_excludes"}

# fixture -> why the engine is clinically wrong there (see the final report of the fixtures work).
KNOWN_DEFECTS: dict[str, str] = {}


def _load_scenarios() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, yaml.safe_load(path.read_text(encoding="utf-8")))
            for path in sorted(SCENARIOS.glob("*.yaml"))]


ALL = _load_scenarios()


def _rules(scenario: Mapping[str, Any]) -> str:
    rule = scenario["rule"]
    return "+".join(rule) if isinstance(rule, list) else str(rule)


def _params() -> list[Any]:
    params = []
    for name, scenario in ALL:
        marks = []
        if scenario["fixture"] in KNOWN_DEFECTS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[scenario["fixture"]]))
        params.append(pytest.param(scenario, id=f"{_rules(scenario)}-{name}", marks=marks))
    return params


def _procedure_codes(engine: Engine) -> set[str]:
    return {c["code"] for c in engine.terminology.codesystems["acne-scar-procedure"]["concept"]}


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- running a scenario ---------------------------------------------------------------------------

Cards = list[tuple[str, dict[str, Any]]]


def _patient_resources(fixture: str) -> tuple[str, list[dict[str, Any]]]:
    bundle = load_json(PATIENTS / f"{fixture}.json")
    resources = [entry["resource"] for entry in bundle["entry"]]
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    return patient_id, resources


def _engine_cards(engine: Engine, scenario: Mapping[str, Any]) -> tuple[str, Cards]:
    patient_id, resources = _patient_resources(scenario["fixture"])
    rendered = engine.evaluate_resources(
        patient_id, [RawResource(r, "fixture") for r in resources], scenario["today"])
    return patient_id, [(c.card_id, c.card) for c in rendered]


def _summary_patterns(engine: Engine) -> dict[str, re.Pattern[str]]:
    """Catalogue card id -> a regex for its rendered summary (placeholders match any text)."""
    return {
        cid: re.compile(".+".join(re.escape(p) for p in re.split(r"\$\{\w+\}", content.summary)))
        for cid, content in engine.catalogue.cards.items()
    }


def _identify(card: Mapping[str, Any], engine: Engine) -> str:
    """The catalogue card an HTTP card was rendered from, by its summary and indicator."""
    found = [cid for cid, pattern in _summary_patterns(engine).items()
             if pattern.fullmatch(card["summary"])
             and engine.catalogue[cid].indicator == card["indicator"]]
    assert len(found) == 1, f"cannot tell which catalogue card says {card['summary']!r}: {found}"
    return found[0]


def _offered(cards: Cards, patient_id: str) -> list[tuple[str, bool]]:
    """(code, isRecommended) of every one-click order, in card order. Checks on the way that
    each is a draft for this patient, and a procedure from the local CodeSystem."""
    offered = []
    for _, card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                resource = action["resource"]
                assert action["type"] == "create"
                assert resource["status"] == "draft", resource
                assert resource["subject"] == {"reference": f"Patient/{patient_id}"}, resource
                if resource["resourceType"] == "ServiceRequest":
                    coding = resource["code"]["coding"][0]
                    assert coding["system"].endswith("/CodeSystem/acne-scar-procedure"), coding
                    offered.append((coding["code"], bool(suggestion.get("isRecommended"))))
                else:
                    assert resource["resourceType"] == "MedicationRequest", resource
                    offered.append((RETINOID, bool(suggestion.get("isRecommended"))))
    return offered


def _check(scenario: Mapping[str, Any], cards: Cards, patient_id: str) -> None:
    """Everything the scenario says about the cards and their suggestions."""
    shown = "\n".join(f"  {cid} [{card['indicator']}] {card['summary']}" for cid, card in cards)
    got = sorted(cid for cid, _ in cards)
    want = sorted(c["card"] for c in scenario["cards"])
    if scenario["no_cards_other_than_listed"]:
        assert got == want, f"expected cards {want}, got:\n{shown}"
    else:
        assert not set(want) - set(got), f"missing cards {set(want) - set(got)}, got:\n{shown}"
    ranks = [SEVERITY[card["indicator"]] for _, card in cards]
    assert ranks == sorted(ranks), f"cards not ordered critical > warning > info:\n{shown}"

    for expected in scenario["cards"]:
        card = next(card for cid, card in cards if cid == expected["card"])
        name = expected["card"]
        assert card["indicator"] == expected["indicator"], f"{name}: indicator {card['indicator']}"
        for phrase in expected.get("summary_contains", []):
            assert phrase in card["summary"], f"{name}: summary lacks {phrase!r}: {card['summary']!r}"
        detail = card.get("detail", "")
        for phrase in expected.get("detail_contains", []):
            assert phrase in detail, f"{name}: detail lacks {phrase!r}:\n{detail}"
        for phrase in expected.get("detail_excludes", []):
            assert phrase not in detail, f"{name}: detail must not say {phrase!r}:\n{detail}"

    offered = _offered(cards, patient_id)
    codes = [code for code, _ in offered]
    for code in scenario.get("suggested", []):
        assert code in codes, f"{code!r} must be offered; offered {codes}"
    for code in scenario.get("not_suggested", []):
        assert code not in codes, f"{code!r} must not be offered; offered {codes}"
    first = scenario.get("first_suggested", [])
    procedures = [(c, rec) for c, rec in offered if c != RETINOID]
    assert [c for c, _ in procedures[:len(first)]] == first, \
        f"the first orders must be {first}; offered {codes}"
    assert all(rec for _, rec in procedures[:len(first)]), \
        f"the first-line orders {first} must be marked isRecommended: {offered}"


# -- the scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", _params())
def test_scenario_engine(scenario: dict[str, Any], engine: Engine) -> None:
    """The engine, called directly with the fixture's resources and the scenario's today."""
    patient_id, cards = _engine_cards(engine, scenario)
    _check(scenario, cards, patient_id)


@pytest.mark.parametrize("scenario", _params())
def test_scenario_http(scenario: dict[str, Any], engine: Engine, client: FlaskClient) -> None:
    """The service over HTTP: the fixture's patient-view request, prefetch filled."""
    assert scenario["today"] == FIXTURE_TODAY, "the test client runs with today = 2026-11-26"
    response = client.post(SERVICE_URL, json=load_json(REQUESTS / f"{scenario['fixture']}.json"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"cards"}
    cards = [(_identify(card, engine), card) for card in body["cards"]]
    patient_id, direct = _engine_cards(engine, scenario)
    _check(scenario, cards, patient_id)
    # The prefetch path must reach the same conclusions as the engine given the whole record.
    assert [(c["indicator"], c["summary"]) for _, c in cards] == \
        [(c["indicator"], c["summary"]) for _, c in direct]


@pytest.mark.parametrize("scenario", _params())
def test_scenario_cli(scenario: dict[str, Any], engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewers' command line (`acne-scar-cds evaluate <bundle> --json`) on the fixture gives
    what the scenario expects, the same cards as the engine."""
    from service.cli import main

    path = PATIENTS / f"{scenario['fixture']}.json"
    assert main(["evaluate", str(path), "--today", scenario["today"].isoformat(), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    cards = [(_identify(card, engine), card) for card in body["cards"]]
    patient_id, direct = _engine_cards(engine, scenario)
    _check(scenario, cards, patient_id)
    assert [c["summary"] for _, c in cards] == [c["summary"] for _, c in direct]


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
    known = _procedure_codes(engine) | {RETINOID}
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


def test_requests_are_up_to_date() -> None:
    """fixtures/requests is what scripts/make_requests.py writes (run `make fixtures`)."""
    wanted = _load_script("make_requests").build_all()
    assert {f"{p.stem}.json" for p in PATIENTS.glob("*.json")} | {"no-prefetch.json"} == set(wanted)
    stale = [name for name, text in wanted.items()
             if not (REQUESTS / name).exists()
             or (REQUESTS / name).read_text(encoding="utf-8") != text]
    assert not stale, f"out of date, run `make fixtures`: {stale}"


def test_large_fixture_is_up_to_date() -> None:
    """fixtures/patients/large-record.json is what scripts/make_large_fixture.py writes."""
    text = _load_script("make_large_fixture").render()
    assert (PATIENTS / "large-record.json").read_text(encoding="utf-8") == text


def test_request_without_prefetch_or_server_is_412(client: FlaskClient) -> None:
    """fixtures/requests/no-prefetch.json (the README's 412 example): nothing to read the
    patient's data from, so the service says which data it could not obtain."""
    response = client.post(SERVICE_URL, json=load_json(REQUESTS / "no-prefetch.json"))
    assert response.status_code == 412
    body = response.get_json()
    assert "cards" not in body
    assert {m["key"] for m in body["missing"]} == set(load_json(REQUESTS / "icepick-moderate.json")
                                                      ["prefetch"])
