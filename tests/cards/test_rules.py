"""Rule behaviour a dermatologist would check, beyond the fixture scenarios."""

from __future__ import annotations

from typing import Any

from cards.engine import Engine
from cards.resources import RawResource
from tests.support.fhir import MORPHOLOGY, icepick_scar, isotretinoin_statement
from tests.support.paths import FIXTURE_TODAY as TODAY

SCT = "http://snomed.info/sct"


def cards(engine: Engine, *resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rendered = engine.evaluate_resources("p1", [RawResource(r, "test") for r in resources], TODAY)
    return {c.card_id: c.card for c in rendered}


def pregnancy_status(answer: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"preg-{when}",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "valueCodeableConcept": {"coding": [{"system": SCT, "code": answer}]},
    }


def test_r3_current_course_with_a_planned_end_gives_the_date(engine: Engine) -> None:
    ongoing = isotretinoin_statement(status="active", end="2027-01-31")
    card = cards(engine, icepick_scar(), ongoing)["isotretinoin-current"]
    assert card["indicator"] == "warning"
    assert "Planned end of the course: 2027-01-31" in card["detail"]
    assert "from 2027-07-31" in card["detail"]


def test_r3_current_course_without_an_end_gives_no_date(engine: Engine) -> None:
    card = cards(engine, icepick_scar(), isotretinoin_statement(status="active", end=None))["isotretinoin-current"]
    assert "Planned end" not in card["detail"]


def test_r5_old_positive_pregnancy_test_is_not_a_current_pregnancy(engine: Engine) -> None:
    """42 weeks after a positive test the pregnancy is over: no R5, but no reassurance either."""
    result = cards(engine, icepick_scar(), pregnancy_status("77386006", "2023-05-01"))
    assert "pregnancy" not in result
    retinoid = [
        s
        for s in result["treatment-plan-ice-pick"]["suggestions"]
        if s["actions"][0]["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert retinoid[0]["label"].endswith("; confirm not pregnant")


def test_r5_recent_positive_pregnancy_test_fires(engine: Engine) -> None:
    result = cards(engine, icepick_scar(), pregnancy_status("77386006", "2026-10-01"))
    assert result["pregnancy"]["indicator"] == "warning"
    plan = result["treatment-plan-ice-pick"]
    assert "suggestions" not in plan
    assert "waits until it is safe" in plan["detail"]
    assert "controlling acne is what prevents new scars" not in plan["detail"]


def test_r5_recent_negative_test_drops_the_confirmation(engine: Engine) -> None:
    result = cards(engine, icepick_scar(), pregnancy_status("60001007", "2026-11-20"))
    labels = [s["label"] for s in result["treatment-plan-ice-pick"]["suggestions"]]
    assert any(label.startswith("Draft prescription") and "confirm" not in label for label in labels)


def test_r1_hypertrophic_scars_are_referred_not_asked_for_a_type(engine: Engine) -> None:
    scar = icepick_scar()
    scar["code"] = {"coding": [{"system": MORPHOLOGY, "code": "hypertrophic"}]}
    result = cards(engine, scar)
    assert set(result) == {"treatment-plan-hypertrophic"}
    codes = [
        s["actions"][0]["resource"].get("code", {}).get("coding", [{}])[0].get("code")
        for s in result["treatment-plan-hypertrophic"]["suggestions"]
    ]
    assert "dermatology-referral" in codes and "tca-cross" not in codes


def test_r1_resolved_scarring_gets_no_cards(engine: Engine) -> None:
    scar = icepick_scar()
    scar["clinicalStatus"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]
    }
    assert cards(engine, scar) == {}


def test_temporal_in_a_label_is_not_oral(engine: Engine) -> None:
    """Whole words: a topical retinoid applied to the temporal area is still topical."""
    use = {
        "resourceType": "MedicationStatement",
        "id": "t",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "tretinoin 0.05% cream, temporal area"},
    }
    plan = cards(engine, icepick_scar(), use)["treatment-plan-ice-pick"]
    assert "Topical retinoid already in use" in plan["detail"]
