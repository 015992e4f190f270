"""The clinical scenarios (tests/scenarios/*.yaml), and how a scenario's cards are checked:
one YAML file per fixture patient says which cards, at which indicator, saying which phrases,
and which one-click orders must be offered or absent. The core's tests run them through the
engine; the service's, over HTTP and through the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from cards.engine import Engine
from cards.resources import RawResource
from tests.support.paths import FIXTURES, SCENARIOS, load_json

PATIENTS = FIXTURES / "patients"
REQUESTS = FIXTURES / "requests"
SEVERITY = {"critical": 0, "warning": 1, "info": 2}
RETINOID = "retinoid"
REQUIRED_KEYS = {"fixture", "today", "rule", "cards", "no_cards_other_than_listed"}
OPTIONAL_KEYS = {"description", "suggested", "not_suggested", "first_suggested"}
CARD_KEYS = {"card", "indicator", "summary_contains", "detail_contains", "detail_excludes"}

# fixture -> why the engine is clinically wrong there (see the final report of the fixtures work).
KNOWN_DEFECTS: dict[str, str] = {}


def load_scenarios() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, yaml.safe_load(path.read_text(encoding="utf-8"))) for path in sorted(SCENARIOS.glob("*.yaml"))]


ALL = load_scenarios()


def rules_label(scenario: Mapping[str, Any]) -> str:
    rule = scenario["rule"]
    return "+".join(rule) if isinstance(rule, list) else str(rule)


def params() -> list[Any]:
    params = []
    for name, scenario in ALL:
        marks = []
        if scenario["fixture"] in KNOWN_DEFECTS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[scenario["fixture"]]))
        params.append(pytest.param(scenario, id=f"{rules_label(scenario)}-{name}", marks=marks))
    return params


def procedure_codes(engine: Engine) -> set[str]:
    return {c["code"] for c in engine.terminology.codesystems["acne-scar-procedure"]["concept"]}


# -- running a scenario ---------------------------------------------------------------------------

Cards = list[tuple[str, dict[str, Any]]]


def patient_resources(fixture: str) -> tuple[str, list[dict[str, Any]]]:
    bundle = load_json(PATIENTS / f"{fixture}.json")
    resources = [entry["resource"] for entry in bundle["entry"]]
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    return patient_id, resources


def engine_cards(engine: Engine, scenario: Mapping[str, Any]) -> tuple[str, Cards]:
    patient_id, resources = patient_resources(scenario["fixture"])
    rendered = engine.evaluate_resources(patient_id, [RawResource(r, "fixture") for r in resources], scenario["today"])
    return patient_id, [(c.card_id, c.card) for c in rendered]


def summary_patterns(engine: Engine) -> dict[str, re.Pattern[str]]:
    """Catalogue card id -> a regex for its rendered summary (placeholders match any text)."""
    return {
        cid: re.compile(".+".join(re.escape(p) for p in re.split(r"\$\{\w+\}", content.summary)))
        for cid, content in engine.catalogue.cards.items()
    }


def identify(card: Mapping[str, Any], engine: Engine) -> str:
    """The catalogue card an HTTP card was rendered from, by its summary and indicator."""
    found = [
        cid
        for cid, pattern in summary_patterns(engine).items()
        if pattern.fullmatch(card["summary"]) and engine.catalogue[cid].indicator == card["indicator"]
    ]
    assert len(found) == 1, f"cannot tell which catalogue card says {card['summary']!r}: {found}"
    return found[0]


def offered_orders(cards: Cards, patient_id: str) -> list[tuple[str, bool]]:
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


def check(scenario: Mapping[str, Any], cards: Cards, patient_id: str) -> None:
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

    offered = offered_orders(cards, patient_id)
    codes = [code for code, _ in offered]
    for code in scenario.get("suggested", []):
        assert code in codes, f"{code!r} must be offered; offered {codes}"
    for code in scenario.get("not_suggested", []):
        assert code not in codes, f"{code!r} must not be offered; offered {codes}"
    first = scenario.get("first_suggested", [])
    procedures = [(c, rec) for c, rec in offered if c != RETINOID]
    assert [c for c, _ in procedures[: len(first)]] == first, f"the first orders must be {first}; offered {codes}"
    assert all(rec for _, rec in procedures[: len(first)]), (
        f"the first-line orders {first} must be marked isRecommended: {offered}"
    )
