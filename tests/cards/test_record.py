"""Facts of GUIDELINE §2 derived from FHIR resources: what each record means to the rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cards.dates import add_months, to_date
from cards.engine import Engine
from cards.record import PatientRecord
from cards.resources import RawResource
from tests.support.fhir import RXNORM, icepick_scar, isotretinoin_statement
from tests.support.paths import FIXTURE_TODAY as TODAY

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def record(engine: Engine, *resources: dict[str, Any]) -> PatientRecord:
    return engine.record("p1", [RawResource(r, "test") for r in resources], TODAY)


def condition(cid: str, system: str, code: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"}, "code": concept, **extra}


def medication(kind: str, mid: str, status: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": mid,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": text},
        **extra,
    }


def test_partial_end_date_is_read_as_the_last_day_of_the_month(engine: Engine) -> None:
    exposure = record(engine, isotretinoin_statement(end="2026-09")).isotretinoin
    assert (exposure.status, exposure.last_dose) == ("past", date(2026, 9, 30))


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert to_date("2026", "earliest") == date(2026, 1, 1)


def test_active_statement_is_current(engine: Engine) -> None:
    assert record(engine, isotretinoin_statement(status="active", end=None)).isotretinoin.status == "current"


def test_end_date_in_the_future_is_current(engine: Engine) -> None:
    assert record(engine, isotretinoin_statement(end="2027-01-15")).isotretinoin.status == "current"


@pytest.mark.parametrize("status", ["entered-in-error", "not-taken"])
def test_statements_that_are_not_facts_are_ignored(engine: Engine, status: str) -> None:
    assert record(engine, isotretinoin_statement(status=status)).isotretinoin.status == "none"


def test_completed_statement_without_period_is_unknown(engine: Engine) -> None:
    exposure = record(engine, isotretinoin_statement(end=None)).isotretinoin
    assert exposure.status == "unknown"
    assert "no end date recorded" in str(exposure.evidence[0])


def test_dispense_gives_the_last_dose_from_days_supply(engine: Engine) -> None:
    dispense = medication(
        "MedicationDispense",
        "d1",
        "completed",
        "isotretinoin 40 MG Oral Capsule",
        whenHandedOver="2026-02-18",
        daysSupply={"value": 30, "unit": "day"},
    )
    exposure = record(engine, dispense).isotretinoin
    assert (exposure.status, exposure.last_dose) == ("past", date(2026, 3, 20))


def test_active_prescription_is_current(engine: Engine) -> None:
    request = medication("MedicationRequest", "r1", "active", "Absorica 25 mg capsule", intent="order")
    assert record(engine, request).isotretinoin.status == "current"


def test_draft_prescription_is_not_history(engine: Engine) -> None:
    request = medication("MedicationRequest", "r1", "draft", "isotretinoin 20 mg", intent="order")
    assert record(engine, request).isotretinoin.status == "none"


def test_request_bounds_give_the_last_dose(engine: Engine) -> None:
    request = medication(
        "MedicationRequest",
        "r1",
        "completed",
        "isotretinoin 20 mg",
        intent="order",
        dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {"start": "2025-10-01", "end": "2026-04-01"}}}}],
    )
    assert record(engine, request).isotretinoin.last_dose == date(2026, 4, 1)


def test_an_open_ended_course_stays_unknown_beside_dated_ones(engine: Engine) -> None:
    """GUIDELINE §2: no end date and not clearly current is unknown — a later dispense does not
    prove the open-ended course stopped (found by the property tests)."""
    open_ended = isotretinoin_statement(end=None, status="stopped")
    open_ended["id"], open_ended["effectivePeriod"] = "open", {"start": "2024-01-10"}
    dispense = medication(
        "MedicationDispense",
        "d1",
        "completed",
        "isotretinoin 20 MG Oral Capsule",
        whenHandedOver="2024-02-01",
        daysSupply={"value": 30, "unit": "day"},
    )
    exposure = record(engine, open_ended, dispense).isotretinoin
    assert exposure.status == "unknown"
    assert [e.reference for e in exposure.evidence] == ["MedicationStatement/open", "MedicationDispense/d1"]


def test_month_only_prescription_date_never_shortens_the_window(engine: Engine) -> None:
    request = medication(
        "MedicationRequest",
        "r1",
        "completed",
        "isotretinoin 20 mg",
        intent="order",
        authoredOn="2026-04",
        dosageInstruction=[{"timing": {"repeat": {"boundsDuration": {"value": 30, "unit": "d", "code": "d"}}}}],
    )
    assert record(engine, request).isotretinoin.last_dose == date(2026, 5, 30)


def test_ties_on_one_day_go_to_the_cautious_reading(engine: Engine) -> None:
    def fitz(oid: str, value: int) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "effectiveDateTime": "2026-10-01",
            "subject": {"reference": "Patient/p1"},
            "valueInteger": value,
            "code": {"coding": [{"system": "http://loinc.org", "code": "66555-4"}]},
        }

    for order in ((fitz("a", 2), fitz("b", 5)), (fitz("b", 5), fitz("a", 2))):
        skin = record(engine, *order).skin_type
        assert skin is not None and skin.value == 5
    mild, severe = icepick_scar(cid="m", severity="mild"), icepick_scar(cid="s", severity="severe")
    for order in ((mild, severe), (severe, mild)):
        facts = record(engine, *order)
        assert facts.scarring is not None and facts.scarring.grade == 4


def fitzpatrick(oid: str, when: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "effectiveDateTime": when,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "66555-4"}]},
        **value,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"valueString": "Type V - brown skin, rarely burns"}, 5),
        ({"valueString": "type 4"}, 4),
        ({"valueString": "Fitzpatrick V"}, 5),
        ({"valueString": "V - brown skin, rarely burns"}, 5),
        ({"valueString": "IV (olive)"}, 4),
        ({"valueCodeableConcept": {"text": "Skin type: III"}}, 3),
        (
            {
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.840.1.113883.6.96.x",
                            "code": "LA-x",
                            "display": "Fitzpatrick skin type VI",
                        }
                    ]
                }
            },
            6,
        ),
        ({"valueInteger": 2}, 2),
        ({"valueQuantity": {"value": 5}}, 5),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else next(iter(v.values())).__str__()[:40],
)
def test_fitzpatrick_answers_are_read_the_way_ehrs_write_them(
    engine: Engine, value: dict[str, Any], expected: int
) -> None:
    """GUIDELINE v2 §2: "Type IV", "type 4", "V - brown skin", "IV (olive)", a display naming it."""
    skin = record(engine, fitzpatrick("f1", "2026-10-01", **value)).skin_type
    assert skin is not None and skin.value == expected


@pytest.mark.parametrize("answer", ["brown skin, rarely burns", "I burn easily", "Type 7", "unknown"])
def test_an_answer_naming_no_type_is_not_recorded_never_a_guess(engine: Engine, answer: str) -> None:
    assert record(engine, fitzpatrick("f1", "2026-10-01", valueString=answer)).skin_type is None


def test_unreadable_latest_fitzpatrick_is_unknown_not_an_older_value(engine: Engine) -> None:
    assert (
        record(
            engine,
            fitzpatrick("old", "2020-01-01", valueString="II"),
            fitzpatrick("new", "2026-10-01", valueString="olive skin"),
        ).skin_type
        is None
    )


def test_isotretinoin_through_a_medication_resource_is_read(engine: Engine) -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "iso1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/med1"},
        "effectivePeriod": {"start": "2026-03-01", "end": "2026-09-26"},
    }
    med = {"resourceType": "Medication", "id": "med1", "code": {"coding": [{"system": RXNORM, "code": "197843"}]}}
    assert record(engine, statement, med).isotretinoin.last_dose == date(2026, 9, 26)


def test_a_number_for_a_date_is_left_out_never_read_as_1970(engine: Engine) -> None:
    """20260926 is no FHIR date (pydantic would read it as a Unix time, 1970-08-23): the end date
    is unread, so the last dose is unknown (GUIDELINE §1 v2), and the record says what it left out."""
    statement = isotretinoin_statement()
    statement["effectivePeriod"]["end"] = 20260926
    facts = record(engine, statement)
    assert facts.isotretinoin.status == "unknown"
    assert "effectivePeriod.end: a number where FHIR R4 has a date" in facts.left_out["MedicationStatement/iso1"]


def test_contained_medication_is_followed(engine: Engine) -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "contained": [
            {"resourceType": "Medication", "id": "med", "code": {"coding": [{"system": RXNORM, "code": "403930"}]}}
        ],
        "medicationReference": {"reference": "#med"},
        "effectivePeriod": {"end": "2026-10-01"},
    }
    assert record(engine, statement).isotretinoin.last_dose == date(2026, 10, 1)


@pytest.mark.parametrize(
    "text, topical",
    [
        ("tretinoin 10 MG Oral Capsule", False),
        ("tretinoin 0.05% cream", True),
        ("adapalene 0.1% gel", True),
        ("tretinoin", False),  # form unknown: not counted as maintenance
    ],
)
def test_topical_retinoid_needs_a_topical_form(engine: Engine, text: str, topical: bool) -> None:
    use = medication("MedicationStatement", "t1", "active", text)
    assert bool(record(engine, use).topical_retinoids) is topical


def test_tretinoin_with_topical_route_counts(engine: Engine) -> None:
    use = medication(
        "MedicationStatement",
        "t1",
        "active",
        "tretinoin",
        dosage=[{"route": {"coding": [{"system": SCT, "code": "6064005"}]}}],
    )
    assert record(engine, use).topical_retinoids


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"valueInteger": 5}, 5),
        ({"valueString": "IV"}, 4),
        ({"valueString": "Type VI"}, 6),
        ({"valueCodeableConcept": {"text": "Fitzpatrick skin type II"}}, 2),
        ({"valueInteger": 9}, None),
    ],
)
def test_fitzpatrick_values(engine: Engine, value: dict[str, Any], expected: int | None) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "f",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "66555-4"}]},
        **value,
    }
    skin = record(engine, obs).skin_type
    assert (skin.value if skin else None) == expected


def test_wrong_fitzpatrick_loinc_is_not_read(engine: Engine) -> None:
    """66472-2 is not the Fitzpatrick code (GUIDELINE §2)."""
    obs = {
        "resourceType": "Observation",
        "id": "f",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "66472-2"}]},
        "valueInteger": 5,
    }
    assert record(engine, obs).skin_type is None


def pregnancy_status(oid: str, when: str, answer: str) -> dict[str, Any]:
    """A pregnancy-status Observation (LOINC 82810-3) answered with a SNOMED CT code."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "valueCodeableConcept": {"coding": [{"system": SCT, "code": answer}]},
    }


def test_latest_pregnancy_observation_wins(engine: Engine) -> None:
    status = pregnancy_status
    facts = record(engine, status("a", "2026-01-01", "77386006"), status("b", "2026-11-01", "60001007"))
    assert facts.pregnancy.status == "not-pregnant"


def test_l90_5_counts_only_with_acne(engine: Engine) -> None:
    burn = condition("s", ICD, "L90.5", "Burn scar, forearm")
    acne_text = condition("s", ICD, "L90.5", "Acne scarring, ice pick type")
    assert record(engine, burn).scarring is None
    facts = record(engine, acne_text)
    assert facts.scarring is not None and facts.scarring.morphologies == {"ice-pick"}
    with_acne = record(engine, burn, condition("a", ICD, "L70.0"))
    assert with_acne.scarring is not None


def test_refuted_conditions_are_not_facts(engine: Engine) -> None:
    refuted = icepick_scar()
    refuted["verificationStatus"]["coding"][0]["code"] = "refuted"
    assert record(engine, refuted).scarring is None


def test_herpes_resolved_is_history(engine: Engine) -> None:
    resolved = condition(
        "h",
        ICD,
        "B00.1",
        clinicalStatus={
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]
        },
    )
    facts = record(engine, resolved)
    assert (facts.herpes_active, len(facts.herpes_history)) == ((), 1)


def test_grade_observation_outranks_condition_severity(engine: Engine) -> None:
    grade = {
        "resourceType": "Observation",
        "id": "g",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {
            "coding": [
                {
                    "system": "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-observation",
                    "code": "goodman-baron-grade",
                }
            ]
        },
        "valueInteger": 4,
    }
    facts = record(engine, icepick_scar(severity="mild"), grade)
    assert facts.scarring is not None and facts.scarring.grade == 4


def test_an_unreadable_medication_record_is_a_medication_that_cannot_be_identified(engine: Engine) -> None:
    """GUIDELINE §1 (v2): a medication record that cannot be read, and names no medication the
    rules know, is never "not isotretinoin"."""
    broken = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": ""},
        "medicationReference": {"reference": "Medication/x"},
        "effectivePeriod": "2026",
    }
    facts = record(engine, broken)
    assert [c.evidence.reference for c in facts.unidentified_medications] == ["MedicationStatement/ms1"]
    assert facts.unidentified_within(TODAY)


def test_a_contained_resource_of_an_unknown_type_is_left_out_not_a_crash(engine: Engine) -> None:
    statement = dict(isotretinoin_statement(), contained=[{"resourceType": "Nope", "id": "x"}])
    facts = record(engine, statement)
    assert facts.isotretinoin.status == "past"
    assert "contained[0]: not a resource FHIR R4 defines" in facts.left_out["MedicationStatement/iso1"]


@pytest.mark.parametrize("answer", ["IV-V", "IV - V", "III/IV"])
def test_a_fitzpatrick_range_is_read_as_its_darkest_type(engine: Engine, answer: str) -> None:
    """Two types named: the darker one, as for two readings on one day (R4 is the cautious side)."""
    skin = record(engine, fitzpatrick("f1", "2026-10-01", valueString=answer)).skin_type
    assert skin is not None and skin.value == max(4, {"IV-V": 5, "IV - V": 5, "III/IV": 4}[answer])


def test_the_latest_pregnancy_answer_unknown_is_not_outweighed_by_an_older_negative(engine: Engine) -> None:
    status = pregnancy_status
    facts = record(engine, status("older", "2026-11-06", "60001007"), status("newer", "2026-11-25", "261665006"))
    assert facts.pregnancy.status == "unknown"


@pytest.mark.parametrize(
    ("system", "code", "display", "status"),
    [
        (SCT, "72892002", "Normal pregnancy", "uncertain"),  # a code the value set lacks, words of a pregnancy
        (ICD, "Z87.59", "Personal history of other complications of pregnancy", "unknown"),  # the past
        # Not "pregnant" (v2 excludes it), but its words say pregnancy: confirm it.
        (ICD, "Z3A.00", "Weeks of gestation of pregnancy not specified", "uncertain"),
        (ICD, "Z34.01", "Encounter for supervision of normal first pregnancy, first trimester", "pregnant"),
    ],
)
def test_pregnancy_codes_and_their_words(engine: Engine, system: str, code: str, display: str, status: str) -> None:
    problem = condition("preg", system, code, clinicalStatus={"coding": [{"code": "active"}]})
    problem["code"]["coding"][0]["display"] = display
    assert record(engine, problem).pregnancy.status == status


@pytest.mark.parametrize(("display", "fact"), [("Herpes labialis", "herpes_active"), ("Keloid", "keloid")])
def test_herpes_and_keloid_are_read_by_their_words_too(engine: Engine, display: str, fact: str) -> None:
    """SNOMED CT problem lists: a code the shipped value sets do not hold, whose display names it."""
    problem = condition(
        "c1", SCT, "1475003" if fact == "herpes_active" else "49420001", clinicalStatus={"coding": [{"code": "active"}]}
    )
    problem["code"]["coding"][0]["display"] = display
    assert getattr(record(engine, problem), fact)
