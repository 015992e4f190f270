"""Hypothesis strategies for the property tests (tests/cards/test_properties.py): realistic, valid
FHIR R4 records for one patient "p1", and alongside them what the strategy wrote (an independent
oracle: which records are facts, the latest possible last dose of each isotretinoin record), so
that the derived facts are checked against the data, not only the cards against the derived facts.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from cards.resources import RawResource
from tests.support.paths import ROOT

PID = "p1"
CONTENT = ROOT / "cards" / "content"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _codesystem(name: str) -> dict[str, Any]:
    return json.loads((CONTENT / "codesystems" / f"{name}.json").read_text(encoding="utf-8"))


MORPHOLOGY_CS = _codesystem("acne-scar-morphology")
PROCEDURE_CS = _codesystem("acne-scar-procedure")
MORPHOLOGY = MORPHOLOGY_CS["url"]
MORPHOLOGY_DISPLAY = {c["code"]: c["display"] for c in MORPHOLOGY_CS["concept"]}
GRADE_OBSERVATION = _codesystem("acne-scar-observation")["url"]
GRADE = _codesystem("acne-scar-grade")["url"]
FITZPATRICK = _codesystem("fitzpatrick-skin-type")["url"]
PROCEDURE = PROCEDURE_CS["url"]
CAUTIONS = {
    c["code"]: frozenset(p["valueCode"] for p in c.get("property", []) if p["code"] == "caution")
    for c in PROCEDURE_CS["concept"]
}

# The procedure lists of the issue, written out (not read from the content) so that the
# properties say what the guideline says; the sanity test below checks they name real codes.
ISOTRETINOIN_DEFERRED = frozenset({"laser-punch-out", "ablative-laser-resurfacing", "mechanical-dermabrasion"})
SKIN_OF_COLOUR_AVOID = frozenset({"ablative-laser-resurfacing", "chemical-peel-deep", "mechanical-dermabrasion"})
SCAR_PROCEDURES = frozenset(CAUTIONS) - {"dermatology-referral"}

# ---------------------------------------------------------------------------------------------
# The oracle's own date reading (independent of cards.dates)


def latest_day(value: str) -> date:
    """The last calendar day a FHIR date / dateTime string can stand for ("2026-09" -> 09-30)."""
    if len(value) == 4:
        return date(int(value), 12, 31)
    if len(value) == 7:
        year, month = int(value[:4]), int(value[5:7])
        return date(year, month, calendar.monthrange(year, month)[1])
    return date.fromisoformat(value[:10])


def earliest_day(value: str) -> date:
    if len(value) == 4:
        return date(int(value), 1, 1)
    if len(value) == 7:
        return date(int(value[:4]), int(value[5:7]), 1)
    return date.fromisoformat(value[:10])


def plus_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


# ---------------------------------------------------------------------------------------------
# What the generator knows about the record it wrote


@dataclass(frozen=True)
class IsoTruth:
    """One isotretinoin record as written: is it a fact (GUIDELINE §1), does its status say it
    goes on, and the latest day its last dose can have been (None: the record does not say)."""

    reference: str
    fact: bool
    ongoing: bool
    end: date | None


@dataclass
class Case:
    today: date
    resources: list[dict[str, Any]]
    scar_expected: bool = False
    pregnant_condition: bool = False
    uncertain_condition: bool = False  # an active chapter-O code that is not "pregnant" (v2)
    iso: list[IsoTruth] = field(default_factory=list)
    # Fitzpatrick Observations: (status is final/amended/corrected, the type the value names or None)
    fitzpatrick: list[tuple[bool, int | None]] = field(default_factory=list)
    # pregnancy-status Observations: (status, answer pregnant?, earliest day it was recorded)
    pregnancy_status: list[tuple[str, bool | None, date | None]] = field(default_factory=list)

    def raw(self) -> list[RawResource]:
        return [RawResource(r, "generated") for r in self.resources]


FINAL = {"final", "amended", "corrected"}
ONGOING = {"active", "on-hold", "intended", "in-progress"}
# Every status of each resource; "completed" first and twice (hypothesis favours early entries):
# ended courses are where the 6-month rule decides.
STATUSES = {
    "MedicationStatement": [
        "completed",
        "completed",
        "stopped",
        "active",
        "entered-in-error",
        "intended",
        "on-hold",
        "unknown",
        "not-taken",
    ],
    "MedicationRequest": [
        "completed",
        "completed",
        "stopped",
        "active",
        "on-hold",
        "cancelled",
        "entered-in-error",
        "draft",
        "unknown",
    ],
    "MedicationDispense": [
        "completed",
        "completed",
        "stopped",
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "entered-in-error",
        "declined",
        "unknown",
    ],
}
NOT_FACT = {
    "MedicationStatement": {"entered-in-error", "not-taken"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationDispense": {"entered-in-error", "cancelled", "declined", "preparation"},
}
OBSERVATION_STATUSES = [
    "registered",
    "preliminary",
    "final",
    "final",
    "final",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
]
SUBJECTS = st.sampled_from(
    [
        {"reference": f"Patient/{PID}"},
        {"reference": f"https://ehr.example/fhir/Patient/{PID}"},
        {"reference": f"Patient/{PID}", "display": "Jo Bloggs"},
    ]
)

# ---------------------------------------------------------------------------------------------
# Strategies

Draw = Callable[[st.SearchStrategy[Any]], Any]


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    result: dict[str, Any] = {"coding": [coding]}
    if text:
        result["text"] = text
    return result


def when(draw: Draw, today: date, lo: int, hi: int, kinds: Iterable[str] = ("date", "month", "year", "time")) -> str:
    """A FHIR date / dateTime between today+lo and today+hi days: full, "2026-09", "2026" or with
    a time and zone."""
    day = today + timedelta(days=draw(st.integers(lo, hi)))
    kind = draw(st.sampled_from(list(kinds)))
    if kind == "month":
        return day.isoformat()[:7]
    if kind == "year":
        return str(day.year)
    if kind == "time":
        zone = draw(st.sampled_from(["Z", "+00:00", "+10:00", "-05:00"]))
        return f"{day.isoformat()}T{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:00{zone}"
    return day.isoformat()


def condition(draw: Draw, today: date, rid: str, code: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """A Condition with random statuses; returns it, whether it is a fact (not refuted / entered
    in error) and whether it is active (active/recurrence/relapse, or no status at all)."""
    verification = draw(
        st.sampled_from(
            [
                None,
                "confirmed",
                None,
                "confirmed",
                "unconfirmed",
                "provisional",
                "differential",
                "refuted",
                "entered-in-error",
            ]
        )
    )
    # con-5: no clinicalStatus on a Condition entered in error.
    clinical = (
        None
        if verification == "entered-in-error"
        else draw(st.sampled_from([None, "active", "recurrence", "relapse", "inactive", "remission", "resolved"]))
    )
    resource: dict[str, Any] = {"resourceType": "Condition", "id": rid, "subject": draw(SUBJECTS), "code": code}
    if clinical:
        resource["clinicalStatus"] = concept(CLINICAL, clinical)
    if verification:
        resource["verificationStatus"] = concept(VERIFICATION, verification)
    # con-4: abatement only with an inactive status.
    if clinical in ("inactive", "remission", "resolved") and draw(st.booleans()):
        resource["abatementDateTime"] = when(draw, today, -3000, 0)
    onset = draw(st.sampled_from([None, "dateTime", "period", "age"]))
    if onset == "dateTime":
        resource["onsetDateTime"] = when(draw, today, -9000, 0)
    elif onset == "period":
        resource["onsetPeriod"] = {"start": when(draw, today, -9000, 0)}
    elif onset == "age":
        resource["onsetAge"] = {"value": draw(st.integers(10, 40)), "unit": "years", "system": UCUM, "code": "a"}
    fact = verification not in ("refuted", "entered-in-error")
    active = clinical in ("active", "recurrence", "relapse") or clinical is None
    return resource, fact, active


SEVERITY = [None, ("255604002", "Mild"), ("6736007", "Moderate"), ("24484000", "Severe"), ("24484000", "Severe")]
# (text, whether it names acne as a whole word)
SCAR_TEXTS = [
    (None, False),
    ("Ice-pick acne scars, cheeks", True),
    ("Pin prick scarring of the cheeks", False),
    ("Rolling and boxcar scars after acne", True),
    ("Post-acne icepick scars", True),
    ("ACNE SCARS", True),
    ("Scar of left knee after surgery", False),
    ("Hypertrophic scar", False),
    ("Macular scars", False),
    ("Scarring; controlling weight", False),
    ("Cicatrices d'acné \U0001f600 \u202eRTL", False),
]
SCAR_NOTES = [None, ("History of acne vulgaris", True), ("Pitting on both cheeks", False)]


def scar(draw: Draw, today: date, rid: str) -> tuple[dict[str, Any], str, bool, bool]:
    """An acne-scar-like Condition: (resource, kind, names acne, fact and not resolved).
    kind: "specific" (local morphology code), "l90" (ICD-10-CM L90.5), "words" (no code, words
    that name acne scars) or "decoy" (other words only, or L70.2 acne varioliformis: neither is
    acne scarring)."""
    kind = draw(st.sampled_from(["specific", "specific", "specific", "l90", "l90", "decoy"]))
    text, acne = draw(st.sampled_from(SCAR_TEXTS))
    if kind == "specific":
        morph = draw(st.sampled_from(["ice-pick", "ice-pick", *MORPHOLOGY_DISPLAY]))
        code = concept(MORPHOLOGY, morph, draw(st.sampled_from([None, MORPHOLOGY_DISPLAY[morph]])), text)
    elif kind == "l90":
        code = concept(ICD10CM, "L90.5", "Scar conditions and fibrosis of skin", text)
    elif draw(st.booleans()):
        # In words only (v2 §5): acne scarring when the words name acne scars, else a decoy.
        code = {"text": text or "Ice pick acne scars"}
        kind = "words" if acne or text is None else "decoy"
    else:
        code = concept(ICD10CM, "L70.2", "Acne varioliformis", text)
    resource, fact, _ = condition(draw, today, rid, code)
    severity = draw(st.sampled_from(SEVERITY))
    if severity:
        resource["severity"] = concept(SNOMED, severity[0], severity[1])
    note = draw(st.sampled_from(SCAR_NOTES))
    if note:
        resource["note"] = [{"text": note[0]}]
        acne = acne or note[1]
    resolved = resource.get("clinicalStatus", {}).get("coding", [{}])[0].get("code") == "resolved"
    return resource, kind, acne, fact and not resolved


ACNE_CODES = [
    concept(SNOMED, "11381005", "Acne"),
    concept(SNOMED, "88616000", "Acne vulgaris"),
    concept(ICD10CM, "L70.0", "Acne vulgaris"),
    concept(ICD10CM, "L70.9", "Acne, unspecified"),
    {"text": "Acne vulgaris"},
    {"text": "Nodulocystic acne"},
]
NOT_ACNE_CODES = [
    concept(ICD10CM, "L70.2", "Acne varioliformis"),
    concept(SNOMED, "38341003", "Hypertension"),
    concept(ICD10CM, "E11.9", "Type 2 diabetes mellitus without complications"),
]
KELOID_CODES = [
    concept(SNOMED, "33659008", "Keloid scar"),
    concept(SNOMED, "238746008", "Acne keloid"),
    concept(ICD10CM, "L91.0", "Hypertrophic scar"),
    concept(ICD10CM, "L73.0", "Acne keloid"),
]
HERPES_CODES = [
    concept(ICD10CM, c, d)
    for c, d in (
        ("B00.1", "Herpesviral vesicular dermatitis"),
        ("B00.9", "Herpesviral infection, unspecified"),
        ("B00.2", "Herpesviral gingivostomatitis"),
    )
]
# Guideline v2 §2, written out (not read from the value sets): a pregnancy on the problem list in
# SNOMED CT, or in ICD-10-CM (Z33.1, Z34.x, O09.x, Z3A.x but Z3A.00), as US problem lists code it.
PREGNANCY_CODES = [
    concept(SNOMED, "77386006", "Pregnancy"),
    concept(ICD10CM, "Z33.1", "Pregnant state, incidental"),
    concept(ICD10CM, "Z34.00", "Supervision of normal first pregnancy, unspecified trimester"),
    concept(ICD10CM, "Z34.81"),
    concept(ICD10CM, "O09.511", "Supervision of elderly primigravida"),
    concept(ICD10CM, "Z3A.10", "10 weeks gestation of pregnancy"),
    concept(ICD10CM, "Z3A38"),
    {"text": "Pregnant, 12 weeks"},
]
# Other chapter-O codes: pregnancy status uncertain (confirm it before retinoids or procedures).
UNCERTAIN_PREGNANCY_CODES = [
    concept(ICD10CM, "O26.891", "Other specified pregnancy related conditions"),
    concept(ICD10CM, "O99.89"),
    concept(ICD10CM, "O21.0", "Mild hyperemesis gravidarum"),
]
NOT_PREGNANCY_CODES = [
    concept(ICD10CM, "Z3A.00", "Weeks of gestation of pregnancy not specified"),
    concept(ICD10CM, "Z87.59", "Personal history of other complications of pregnancy"),
]

ISO_CODINGS = [
    {"system": RXNORM, "code": c}
    for c in (
        "6064",
        "197843",
        "197844",
        "197845",
        "403930",
        "1547561",
        "1547565",
        "2262711",
        "2262714",
        "2262721",
        "2262725",
        "2262729",
    )
]
ISO_CODINGS += [{"system": ATC, "code": "D10BA01"}, {"system": SNOMED, "code": "387208003"}]
ISO_TEXTS = [
    "Isotretinoin 20 MG Oral Capsule",
    "Absorica 40 MG",
    "Accutane",
    "isotretinoin",
    "Roaccutane 10 mg",
    "Claravis capsule",
]


def iso_concept(draw: Draw) -> dict[str, Any]:
    shape = draw(st.sampled_from(["coding", "text", "both"]))
    result: dict[str, Any] = {}
    if shape in ("coding", "both"):
        result["coding"] = [draw(st.sampled_from(ISO_CODINGS))]
    if shape in ("text", "both"):
        result["text"] = draw(st.sampled_from(ISO_TEXTS))
    return result


def medication_part(
    draw: Draw, rid: str, med: dict[str, Any], display: str | None, reference_only: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """medication[x] of a statement / request / dispense, and any Medication sent alongside.
    reference_only: a reference to a separate Medication, with no display."""
    if reference_only:
        return (
            {"medicationReference": {"reference": f"Medication/{rid}-med"}},
            [{"resourceType": "Medication", "id": f"{rid}-med", "code": med}],
        )
    shape = draw(st.sampled_from(["concept", "concept", "contained", "separate"]))
    if shape == "concept":
        return {"medicationCodeableConcept": med}, []
    if shape == "contained":
        ref: dict[str, Any] = {"reference": "#med"}
        if display and draw(st.booleans()):
            ref["display"] = display
        return {"contained": [{"resourceType": "Medication", "id": "med", "code": med}], "medicationReference": ref}, []
    # A separate Medication: the reference carries its display (what real EHRs send).
    return (
        {"medicationReference": {"reference": f"Medication/{rid}-med", "display": display or "medication"}},
        [{"resourceType": "Medication", "id": f"{rid}-med", "code": med}],
    )


def isotretinoin_use(
    draw: Draw,
    today: date,
    rid: str,
    *,
    reference_only: bool = False,
    month_only_authored: bool = False,
    fact: bool = False,
) -> tuple[list[dict[str, Any]], IsoTruth]:
    """An isotretinoin MedicationStatement / Request / Dispense and what the generator knows of it."""
    kind = "MedicationRequest" if month_only_authored else draw(st.sampled_from(list(STATUSES)))
    statuses = [s for s in STATUSES[kind] if not fact or (s not in NOT_FACT[kind] and s not in ONGOING)]
    status = draw(st.sampled_from(statuses))
    resource: dict[str, Any] = {"resourceType": kind, "id": rid, "status": status}
    if kind != "MedicationDispense" or draw(st.booleans()):
        resource["subject"] = draw(SUBJECTS)
    med = iso_concept(draw)
    display = med.get("text") or draw(st.sampled_from(ISO_TEXTS))
    medication, extra = medication_part(draw, rid, med, display, reference_only)
    resource.update(medication)
    end: date | None = None
    if kind == "MedicationStatement":
        shape = draw(st.sampled_from(["period", "dateTime", "period", "none"]))
        if shape == "dateTime":
            offset = draw(END_OFFSETS)
            resource["effectiveDateTime"] = value = when(draw, today, offset, offset)
            end = latest_day(value) if status in ("completed", "stopped") else None
        elif shape == "period":
            period = _period(draw, today)
            if period:
                resource["effectivePeriod"] = period
            end = latest_day(period["end"]) if "end" in period else None
    elif kind == "MedicationDispense":
        if draw(st.sampled_from([True, True, False])):
            offset = draw(END_OFFSETS)
            resource["whenHandedOver"] = handed = when(draw, today, offset - 90, offset)
            if draw(st.sampled_from([True, True, False])):
                days = draw(st.integers(1, 90))
                resource["daysSupply"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
                end = latest_day(handed) + timedelta(days=days)
    else:
        resource["intent"] = draw(st.sampled_from(["order", "plan", "original-order"]))
        end = _request_dates(draw, today, resource, month_only_authored)
    truth = IsoTruth(f"{kind}/{rid}", status not in NOT_FACT[kind], status in ONGOING, end)
    return [resource, *extra], truth


# Last doses cluster around the 6-month window, where the isotretinoin rule decides.
END_OFFSETS = st.one_of(st.integers(-240, 30), st.integers(-2000, 300))


def _period(draw: Draw, today: date) -> dict[str, str]:
    end_offset = draw(END_OFFSETS)
    period = {}
    if draw(st.booleans()):
        period["start"] = when(draw, today, end_offset - 365, end_offset, ("date", "time"))
    if draw(st.sampled_from([True, True, False])):
        period["end"] = when(draw, today, end_offset, end_offset)
    return period


DURATION_UNITS = [("d", "days", 1), ("wk", "weeks", 7), ("mo", "months", None)]


def _request_dates(draw: Draw, today: date, resource: dict[str, Any], month_only_authored: bool) -> date | None:
    """authoredOn and dosage bounds of a MedicationRequest; the latest possible end."""
    authored = None
    if month_only_authored:
        # Long enough ago that the course ended before today whichever day of the month it began.
        resource["authoredOn"] = authored = when(draw, today, -700, -100, ("month",))
    elif draw(st.sampled_from([True, True, False])):
        offset = min(draw(END_OFFSETS), 0)
        resource["authoredOn"] = authored = when(draw, today, offset - 180, offset, ("date", "time"))
    bounds = "duration" if month_only_authored else draw(st.sampled_from(["period", "duration", "none"]))
    dosage: dict[str, Any] = {"text": "20 mg daily with food"}
    end = None
    if bounds == "period":
        period = _period(draw, today)
        if period:
            dosage["timing"] = {"repeat": {"boundsPeriod": period}}
        end = latest_day(period["end"]) if "end" in period else None
    elif bounds == "duration":
        code, unit, days = draw(st.sampled_from(DURATION_UNITS))
        # month_only_authored: at most about a month, so that the course ended before today.
        most = {"d": 30, "wk": 4, "mo": 1} if month_only_authored else {"d": 180, "wk": 26, "mo": 6}
        value = draw(st.integers(1, most[code]))
        dosage["timing"] = {"repeat": {"boundsDuration": {"value": value, "unit": unit, "system": UCUM, "code": code}}}
        if authored:
            last = latest_day(authored)
            end = plus_months(last, value) if days is None else last + timedelta(days=value * days)
    resource["dosageInstruction"] = [dosage]
    return end


RETINOID_MEDS = [  # (concept, topical?)
    (concept(RXNORM, "313453", text="Tretinoin 0.1% gel"), True),
    (concept(RXNORM, "313200", text="Tazarotene 0.1% cream"), True),
    (concept(ATC, "D10AD03", "adapalene"), True),
    ({"text": "Adapalene 0.1% gel"}, True),
    (concept(RXNORM, "10753", text="Tretinoin 0.05% cream"), True),
    (concept(RXNORM, "10753", text="tretinoin 10 MG Oral Capsule"), False),
]


def retinoid_use(draw: Draw, rid: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["MedicationStatement", "MedicationRequest"]))
    med, _ = draw(st.sampled_from(RETINOID_MEDS))
    resource: dict[str, Any] = {
        "resourceType": kind,
        "id": rid,
        "status": draw(st.sampled_from(STATUSES[kind])),
        "subject": draw(SUBJECTS),
        "medicationCodeableConcept": med,
    }
    if kind == "MedicationRequest":
        resource["intent"] = "order"
    if draw(st.booleans()):
        dosage = {"text": "apply thinly at night", "route": concept(SNOMED, "6064005", "Topical route")}
        resource["dosageInstruction" if kind == "MedicationRequest" else "dosage"] = [dosage]
    return resource


# (value[x] element, value, the Fitzpatrick type it names or None)
FITZPATRICK_VALUES: list[tuple[str, Any, int | None]] = [
    *(
        ("valueString", s, n)
        for s, n in (
            ("IV", 4),
            ("V", 5),
            ("VI", 6),
            ("I", 1),
            ("II", 2),
            ("III", 3),
            ("Type IV", 4),
            ("type v", 5),
            ("Fitzpatrick skin type VI", 6),
            ("Skin type III", 3),
            ("4", 4),
            ("unknown", None),
            ("not assessed", None),
            ("7", None),
            ("0", None),
        )
    ),
    *(
        ("valueCodeableConcept", concept(FITZPATRICK, r, f"Fitzpatrick skin type {r}"), n)
        for r, n in (("I", 1), ("II", 2), ("III", 3), ("IV", 4), ("V", 5), ("VI", 6))
    ),
    ("valueCodeableConcept", {"text": "Type V"}, 5),
    *(("valueInteger", n, n if 1 <= n <= 6 else None) for n in range(0, 9)),
]


def observation(draw: Draw, today: date, rid: str, code: dict[str, Any], lo: int = -3000) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": draw(st.sampled_from(OBSERVATION_STATUSES)),
        "subject": draw(SUBJECTS),
        "code": code,
    }
    if draw(st.booleans()):
        resource["effectiveDateTime"] = when(draw, today, lo, 0)
    if draw(st.booleans()):
        day = today + timedelta(days=draw(st.integers(lo, 0)))
        resource["issued"] = f"{day.isoformat()}T09:30:00Z"
    return resource


PREGNANCY_ANSWERS = [
    (concept(SNOMED, "77386006", "Pregnant"), True),
    (concept(SNOMED, "60001007", "Not pregnant"), False),
    (concept(SNOMED, "261665006", "Unknown"), None),
]


# Blocking findings (acne, pregnancy, keloid, herpes) are drawn less often, so that plans with
# nothing blocked (laser punch-out for severe ice-pick scars) are common enough to test.
FEW_BLOCKERS = st.sampled_from([0, 0, 0, 1, 2])
RARE = st.sampled_from([0, 0, 0, 1])


@st.composite
def cases(
    draw: Draw, *, laser_candidate: bool = False, reference_only: bool = False, month_only_authored: bool = False
) -> Case:
    """One patient's record as an EHR would send it, and what the generator knows about it.
    laser_candidate: the record also holds severe ice-pick scars and a recorded Fitzpatrick type
    I-III, so the plan offers laser punch-out unless a safety rule blocks it.
    reference_only / month_only_authored: every isotretinoin record is of that (defect) shape."""
    today = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    case = Case(today, [])
    resources = case.resources
    if draw(st.booleans()):
        patient: dict[str, Any] = {"resourceType": "Patient", "id": PID}
        if draw(st.booleans()):
            patient["birthDate"] = when(draw, today, -25000, -5000, ("date", "month", "year"))
        gender = draw(st.sampled_from([None, "female", "male", "other", "unknown"]))
        if gender:
            patient["gender"] = gender
        resources.append(patient)
    scars = [scar(draw, today, f"scar{i}") for i in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3])))]
    resources += [s[0] for s in scars]
    if laser_candidate:
        severe = {
            "resourceType": "Condition",
            "id": "scar-severe",
            "subject": draw(SUBJECTS),
            "clinicalStatus": concept(CLINICAL, "active"),
            "verificationStatus": concept(VERIFICATION, "confirmed"),
            "code": concept(MORPHOLOGY, "ice-pick", MORPHOLOGY_DISPLAY["ice-pick"], "Ice-pick acne scars"),
            "severity": concept(SNOMED, "24484000", "Severe"),
        }
        skin = draw(st.integers(1, 3))
        light = {
            "resourceType": "Observation",
            "id": "fitz-light",
            "status": "final",
            "subject": draw(SUBJECTS),
            "code": concept(LOINC, "66555-4"),
            "valueInteger": skin,
            "effectiveDateTime": today.isoformat(),
        }
        resources += [severe, light]
        scars.append((severe, "specific", True, True))
        case.fitzpatrick.append((True, skin))
    has_acne = False
    for i in range(draw(FEW_BLOCKERS)):
        code, is_acne = draw(st.sampled_from([(c, True) for c in ACNE_CODES] + [(c, False) for c in NOT_ACNE_CODES]))
        resource, fact, _ = condition(draw, today, f"acne{i}", code)
        resources.append(resource)
        has_acne = has_acne or (is_acne and fact)
    case.scar_expected = any(
        ok and (kind in ("specific", "words") or (kind == "l90" and (acne or has_acne))) for _, kind, acne, ok in scars
    )
    for prefix, codes in (("keloid", KELOID_CODES), ("herpes", HERPES_CODES)):
        for i in range(draw(RARE)):
            resources.append(condition(draw, today, f"{prefix}{i}", draw(st.sampled_from(codes)))[0])
    for i in range(draw(FEW_BLOCKERS)):
        resource, fact, active = condition(draw, today, f"preg{i}", draw(st.sampled_from(PREGNANCY_CODES)))
        resources.append(resource)
        case.pregnant_condition = case.pregnant_condition or (fact and active)
    for i in range(draw(RARE)):
        code = draw(st.sampled_from(UNCERTAIN_PREGNANCY_CODES + NOT_PREGNANCY_CODES))
        resource, fact, active = condition(draw, today, f"pregnancy-other{i}", code)
        resources.append(resource)
        case.uncertain_condition = case.uncertain_condition or (fact and active and code in UNCERTAIN_PREGNANCY_CODES)
    least_iso = 1 if reference_only or month_only_authored else 0
    for i in range(draw(st.sampled_from([least_iso, 1, 1, 1, 2, 3]))):
        written, truth = isotretinoin_use(
            draw,
            today,
            f"iso{i}",
            reference_only=reference_only,
            month_only_authored=month_only_authored,
            fact=least_iso > 0,
        )
        resources += written
        case.iso.append(truth)
    resources += [retinoid_use(draw, f"ret{i}") for i in range(draw(st.integers(0, 2)))]
    for i in range(draw(st.sampled_from([0, 1, 1, 2]))):
        resource = observation(draw, today, f"fitz{i}", concept(LOINC, "66555-4", "Skin type [Fitzpatrick]"))
        element, value, names = draw(st.sampled_from(FITZPATRICK_VALUES))
        resource[element] = value
        resources.append(resource)
        case.fitzpatrick.append((resource["status"] in FINAL, names))
    for i in range(draw(FEW_BLOCKERS)):
        resource = observation(draw, today, f"pregobs{i}", concept(LOINC, "82810-3", "Pregnancy status"), -600)
        answer, positive = draw(st.sampled_from(PREGNANCY_ANSWERS))
        resource["valueCodeableConcept"] = answer
        resources.append(resource)
        recorded = resource.get("effectiveDateTime") or resource.get("issued")
        case.pregnancy_status.append((resource["status"], positive, earliest_day(recorded) if recorded else None))
    for i in range(draw(st.integers(0, 1))):
        resource = observation(draw, today, f"grade{i}", concept(GRADE_OBSERVATION, "goodman-baron-grade"))
        if draw(st.booleans()):
            resource["valueInteger"] = draw(st.integers(0, 5))
        else:
            resource["valueCodeableConcept"] = concept(GRADE, str(draw(st.integers(1, 4))))
        resources.append(resource)
    for i in range(draw(st.integers(0, 2))):  # noise the rules do not read
        resources.append(condition(draw, today, f"other{i}", draw(st.sampled_from(NOT_ACNE_CODES)))[0])
    case.resources = draw(st.permutations(resources))
    return case


ANY_CASE = st.one_of(cases(), cases(laser_candidate=True))
