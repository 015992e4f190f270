#!/usr/bin/env python3
"""Write fixtures/patients/large-record.json: a realistic ~500-resource chart with ice-pick scars.

Deterministic (a fixed seed, fixed dates; no clock, no network): running it twice gives the same
bytes. The benchmark uses this patient as the "large" case (DESIGN.md, Quality bars), so the
record looks like a long-followed adult in primary care: a long problem list, years of quarterly
prescriptions and pharmacy fills, vital signs at every visit and yearly labs. Written against the
fixture date 2026-11-26 (fixtures/README.md).

What the guideline should find in it (tests/scenarios/large-record.yaml):
  - ice-pick acne scars, moderate, since 2010 -> R1 ice-pick plan with the R8 "older scars" section
  - herpes labialis, resolved -> R7 info (antiviral prophylaxis)
  - isotretinoin in 2008 and a topical tretinoin stopped in 2012 -> no R3 card, and the plan
    still offers a maintenance topical retinoid
Everything else (hundreds of resources) is noise the service must pass over quickly.

Usage:  python scripts/make_large_fixture.py [--check]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "patients" / "large-record.json"
PID = "large-record"
SEED = 20261126
BASE = "https://ehr.example.org/fhir"
LOCAL = "https://acne-scar-cds.example/fhir/CodeSystem"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
SUBJECT = {"reference": f"Patient/{PID}"}
ORAL = {"coding": [{"system": SCT, "code": "26643006", "display": "Oral route"}]}
TOPICAL = {"coding": [{"system": SCT, "code": "6064005", "display": "Topical route"}]}
INHALED = {"coding": [{"system": SCT, "code": "447694001", "display": "Respiratory tract route"}]}
NASAL = {"coding": [{"system": SCT, "code": "46713006", "display": "Nasal route"}]}

# Long-term problems: (suffix, ICD-10-CM code, display, text, onset)
CHRONIC = [
    ("htn", "I10", "Essential (primary) hypertension", "Essential hypertension", "2017-03"),
    ("hld", "E78.5", "Hyperlipidemia, unspecified", "Hyperlipidaemia", "2018-06"),
    ("prediabetes", "R73.03", "Prediabetes", "Prediabetes", "2021-02"),
    ("gerd", "K21.9", "Gastro-esophageal reflux disease without esophagitis", "GERD", "2015-08"),
    ("osa", "G47.33", "Obstructive sleep apnea (adult) (pediatric)", "Obstructive sleep apnoea",
     "2020-05"),
    ("asthma", "J45.20", "Mild intermittent asthma, uncomplicated", "Mild intermittent asthma",
     "1995"),
    ("rhinitis", "J30.2", "Other seasonal allergic rhinitis", "Seasonal allergic rhinitis", "1998"),
    ("mdd", "F33.1", "Major depressive disorder, recurrent, moderate",
     "Recurrent depression, moderate", "2016-01"),
    ("gout", "M10.9", "Gout, unspecified", "Gout", "2022-07"),
    ("seb-derm", "L21.9", "Seborrheic dermatitis, unspecified", "Seborrhoeic dermatitis, scalp",
     "2014"),
    ("onychomycosis", "B35.1", "Tinea unguium", "Onychomycosis, toenails", "2023-03"),
    ("obesity", "E66.9", "Obesity, unspecified", "Obesity", "2017"),
    ("back-pain", "M54.50", "Low back pain, unspecified", "Chronic low back pain", "2019"),
    ("myopia", "H52.13", "Myopia, bilateral", "Myopia", "2000"),
]
# Past episodes: (suffix, code, display, [(onset, abatement), ...])
EPISODES = [
    ("uri", "J06.9", "Acute upper respiratory infection, unspecified",
     [("2016-01-11", "2016-01-20"), ("2017-12-02", "2017-12-12"), ("2019-02-18", "2019-02-27"),
      ("2021-11-08", "2021-11-15"), ("2023-01-23", "2023-02-01"), ("2025-12-01", "2025-12-09")]),
    ("bronchitis", "J20.9", "Acute bronchitis, unspecified",
     [("2018-01-15", "2018-02-05"), ("2024-02-12", "2024-03-01")]),
    ("sinusitis", "J01.90", "Acute sinusitis, unspecified",
     [("2016-10-03", "2016-10-20"), ("2020-03-02", "2020-03-16"), ("2025-04-07", "2025-04-21")]),
    ("strep", "J02.0", "Streptococcal pharyngitis", [("2015-05-04", "2015-05-14")]),
    ("influenza", "J11.1",
     "Influenza due to unidentified influenza virus with other respiratory manifestations",
     [("2018-01-29", "2018-02-08"), ("2024-12-16", "2024-12-27")]),
    ("covid", "U07.1", "COVID-19", [("2020-12-07", "2020-12-21"), ("2022-07-18", "2022-07-28")]),
    ("gastroenteritis", "A09", "Infectious gastroenteritis and colitis, unspecified",
     [("2019-08-05", "2019-08-09"), ("2023-06-19", "2023-06-23")]),
    ("ankle-sprain", "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter",
     [("2021-05-22", "2021-07-01")]),
    ("conjunctivitis", "H10.9", "Unspecified conjunctivitis", [("2017-04-10", "2017-04-17")]),
    ("cellulitis", "L03.115", "Cellulitis of right lower limb", [("2022-09-12", "2022-09-26")]),
    ("appendicitis", "K35.80", "Unspecified acute appendicitis", [("2011-03-14", "2011-03-28")]),
    ("contact-derm", "L25.9", "Unspecified contact dermatitis, unspecified cause",
     [("2019-06-03", "2019-06-24")]),
    ("knee-pain", "M25.561", "Pain in right knee", [("2024-08-05", "2024-10-01")]),
    ("headache", "R51.9", "Headache, unspecified", [("2018-09-10", "2018-09-14")]),
    ("cyst", "L72.0", "Epidermal cyst", [("2020-09-14", "2020-11-02")]),
    ("hernia", "K40.90",
     "Unilateral inguinal hernia, without obstruction or gangrene, not specified as recurrent",
     [("2013-02-04", "2013-04-15")]),
]
# Quarterly prescriptions: (suffix, RxNorm ingredient, display, text, dosage, route, quantity)
CHRONIC_MEDS = [
    ("lisinopril", "29046", "lisinopril", "lisinopril 20 mg oral tablet",
     "20 mg by mouth once daily", ORAL, (90, "tablet")),
    ("atorvastatin", "83367", "atorvastatin", "atorvastatin 40 mg oral tablet",
     "40 mg by mouth at night", ORAL, (90, "tablet")),
    ("omeprazole", "7646", "omeprazole", "omeprazole 20 mg delayed-release oral capsule",
     "20 mg by mouth before breakfast", ORAL, (90, "capsule")),
    ("sertraline", "36437", "sertraline", "sertraline 100 mg oral tablet",
     "100 mg by mouth once daily", ORAL, (90, "tablet")),
    ("albuterol", "435", "albuterol", "albuterol 90 mcg/actuation inhaler",
     "2 puffs every 4 to 6 hours as needed for wheeze", INHALED, (1, "inhaler")),
    ("fluticasone", "41126", "fluticasone", "fluticasone propionate 50 mcg/actuation nasal spray",
     "2 sprays in each nostril once daily in season", NASAL, (1, "bottle")),
]
FIRST_VISIT = date(2020, 10, 5)
VISITS = 25  # quarterly, 2020-10 to 2026-10
LAB_YEARS = range(2021, 2027)
# Yearly labs: (suffix, LOINC, display, unit, low, high, decimals)
LABS = [
    ("chol", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 165, 215, 0),
    ("ldl", "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
     "mg/dL", 85, 135, 0),
    ("hdl", "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 38, 52, 0),
    ("tg", "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 110, 210, 0),
    ("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.6, 6.3, 1),
    ("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.8, 1.2, 2),
    ("urate", "3084-1", "Urate [Mass/volume] in Serum or Plasma", "mg/dL", 5.8, 8.9, 1),
]


def cc(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def status(kind: str, code: str) -> dict[str, Any]:
    return cc(f"{TERMINOLOGY}/{kind}", code, code.replace("-", " ").capitalize())


def condition(suffix: str, codings: list[tuple[str, str, str]], text: str, *, clinical: str,
              onset: str, abatement: str | None = None, category: str = "problem-list-item",
              severity: tuple[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"{PID}-{suffix}",
        "clinicalStatus": status("condition-clinical", clinical),
        "verificationStatus": status("condition-ver-status", "confirmed"),
        "category": [cc(f"{TERMINOLOGY}/condition-category", category,
                        "Problem List Item" if category == "problem-list-item"
                        else "Encounter Diagnosis")],
    }
    if severity:
        res["severity"] = cc(SCT, *severity)
    res["code"] = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings],
                   "text": text}
    res["subject"] = SUBJECT
    res["onsetDateTime"] = onset
    if abatement:
        res["abatementDateTime"] = abatement
    res["recordedDate"] = first_day(onset)
    return res


def first_day(partial: str) -> str:
    """A FHIR date ("2010", "2010-09" or "2010-09-14") as a full date, its first day."""
    return {4: f"{partial}-01-01", 7: f"{partial}-01"}.get(len(partial), partial)


def conditions() -> list[dict[str, Any]]:
    out = [
        condition("acne-scar", [(ICD, "L90.5", "Scar conditions and fibrosis of skin"),
                                (f"{LOCAL}/acne-scar-morphology", "ice-pick",
                                 "Ice-pick (pin prick) acne scar")],
                  "Ice-pick acne scars, cheeks and temples", clinical="active", onset="2010-09",
                  severity=("6736007", "Moderate")),
        condition("acne", [(ICD, "L70.0", "Acne vulgaris"), (SCT, "88616000", "Acne vulgaris")],
                  "Acne vulgaris", clinical="resolved", onset="2002", abatement="2009-06"),
        condition("hsv", [(ICD, "B00.1", "Herpesviral vesicular dermatitis")],
                  "Herpes labialis, recurrent (last episode April 2024)", clinical="resolved",
                  onset="2012-05", abatement="2024-04-22"),
        condition("tobacco", [(ICD, "Z87.891", "Personal history of nicotine dependence")],
                  "Former smoker (quit 2014)", clinical="resolved", onset="2004",
                  abatement="2014-01"),
    ]
    for suffix, code, display, text, onset in CHRONIC:
        out.append(condition(suffix, [(ICD, code, display)], text, clinical="active", onset=onset))
    for suffix, code, display, episodes in EPISODES:
        for n, (onset, abatement) in enumerate(episodes, start=1):
            name = suffix if len(episodes) == 1 else f"{suffix}-{n}"
            out.append(condition(name, [(ICD, code, display)], display, clinical="resolved",
                                 onset=onset, abatement=abatement, category="encounter-diagnosis"))
    return out


def statement(suffix: str, medication: dict[str, Any], state: str, start: str, end: str | None,
              dosage: str, route: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": f"{PID}-{suffix}",
        "status": state,
        "medicationCodeableConcept": medication,
        "subject": SUBJECT,
        "effectivePeriod": {"start": start, **({"end": end} if end else {})},
        "dateAsserted": "2026-10-05",
        "dosage": [{"text": dosage, "route": route}],
    }
    if note:
        res["note"] = [{"text": note}]
    return res


def statements() -> list[dict[str, Any]]:
    out = [
        statement("isotretinoin", cc(RX, "197845", "isotretinoin 40 MG Oral Capsule",
                                     "isotretinoin 40 mg oral capsule"),
                  "completed", "2008-03-10", "2008-09-10", "40 mg by mouth once daily", ORAL,
                  note="Single 6-month course for nodular acne."),
        statement("tretinoin-cream", cc(RX, "10753", "tretinoin", "tretinoin 0.025% topical cream"),
                  "stopped", "2009-07-01", "2012-05-01", "Apply a thin layer at night", TOPICAL,
                  note="Stopped: irritation."),
        statement("clindamycin-gel", cc(RX, "2582", "clindamycin", "clindamycin 1% topical gel"),
                  "stopped", "2007-01-15", "2009-06-30", "Apply twice daily", TOPICAL),
        statement("doxycycline", cc(RX, "3640", "doxycycline", "doxycycline 100 mg oral capsule"),
                  "completed", "2007-01-15", "2007-07-15", "100 mg by mouth once daily", ORAL),
        statement("terbinafine", cc(RX, "37801", "terbinafine", "terbinafine 250 mg oral tablet"),
                  "completed", "2023-03-20", "2023-06-12", "250 mg by mouth once daily", ORAL),
        statement("colchicine", cc(RX, "2683", "colchicine", "colchicine 0.6 mg oral tablet"),
                  "completed", "2022-07-11", "2022-07-25", "0.6 mg by mouth twice daily", ORAL),
        statement("ketoconazole", cc(RX, "6135", "ketoconazole", "ketoconazole 2% shampoo"),
                  "active", "2014-04-01", None, "Wash scalp twice weekly", TOPICAL),
        statement("ibuprofen", cc(RX, "5640", "ibuprofen", "ibuprofen 400 mg oral tablet"),
                  "active", "2019-03-01", None, "400 mg by mouth every 8 hours as needed", ORAL),
        statement("valacyclovir", cc(RX, "73645", "valacyclovir", "valacyclovir 1 g oral tablet"),
                  "active", "2018-05-01", None,
                  "2 g twice for one day at the first sign of a cold sore", ORAL),
        statement("allopurinol", cc(RX, "519", "allopurinol", "allopurinol 300 mg oral tablet"),
                  "active", "2022-09-01", None, "300 mg by mouth once daily", ORAL),
    ]
    for suffix, code, display, text, dosage, route, _ in CHRONIC_MEDS:
        out.append(statement(suffix, cc(RX, code, display, text), "active", "2020-10-05", None,
                             dosage, route))
    return out


def prescriptions_and_fills() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    requests, dispenses = [], []
    for suffix, code, display, text, dosage, route, quantity in CHRONIC_MEDS:
        medication = cc(RX, code, display, text)
        for n in range(VISITS):
            authored = FIRST_VISIT + timedelta(days=91 * n)
            rid = f"{PID}-{suffix}-rx-{n + 1:02d}"
            requests.append({
                "resourceType": "MedicationRequest",
                "id": rid,
                "status": "active" if n == VISITS - 1 else "completed",
                "intent": "order",
                "category": [cc(f"{TERMINOLOGY}/medicationrequest-category", "community",
                                "Community")],
                "medicationCodeableConcept": medication,
                "subject": SUBJECT,
                "authoredOn": authored.isoformat(),
                "requester": {"reference": "Practitioner/example", "display": "Dr. A. Example"},
                "dosageInstruction": [{
                    "text": dosage,
                    "route": route,
                    "timing": {"repeat": {"boundsDuration": {"value": 90, "unit": "day",
                                                             "system": UCUM, "code": "d"}}},
                }],
                "dispenseRequest": {
                    "numberOfRepeatsAllowed": 0,
                    "quantity": {"value": quantity[0], "unit": quantity[1]},
                    "expectedSupplyDuration": {"value": 90, "unit": "days", "system": UCUM,
                                               "code": "d"},
                },
            })
            dispenses.append({
                "resourceType": "MedicationDispense",
                "id": f"{PID}-{suffix}-fill-{n + 1:02d}",
                "status": "completed",
                "medicationCodeableConcept": medication,
                "subject": SUBJECT,
                "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}],
                "quantity": {"value": quantity[0], "unit": quantity[1]},
                "daysSupply": {"value": 90, "unit": "day", "system": UCUM, "code": "d"},
                "whenHandedOver": f"{(authored + timedelta(days=1)).isoformat()}T17:20:00Z",
            })
    return requests, dispenses


def observation(suffix: str, category: str, code: dict[str, Any], when: str,
                value: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"{PID}-{suffix}",
        "status": "final",
        "category": [cc(f"{TERMINOLOGY}/observation-category", category,
                        {"vital-signs": "Vital Signs", "laboratory": "Laboratory",
                         "exam": "Exam"}[category])],
        "code": code,
        "subject": SUBJECT,
        "effectiveDateTime": when,
        **value,
    }


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def observations(rng: random.Random) -> list[dict[str, Any]]:
    out = [
        observation("fitzpatrick", "exam",
                    cc(LOINC, "66555-4", "Skin type [Fitzpatrick Classification Scale]"),
                    "2026-10-05T10:30:00Z",
                    {"valueCodeableConcept": cc(f"{LOCAL}/fitzpatrick-skin-type", "II",
                                                "Fitzpatrick skin type II", "Type II")}),
        observation("scar-grade", "exam",
                    cc(f"{LOCAL}/acne-scar-observation", "goodman-baron-grade",
                       "Acne scar grade [Goodman & Baron qualitative]"),
                    "2026-10-05T10:35:00Z", {"valueInteger": 3}),
    ]
    weight = 96.0
    for n in range(VISITS):
        day = FIRST_VISIT + timedelta(days=91 * n)
        when = f"{day.isoformat()}T09:{10 + n % 40:02d}:00Z"
        weight = round(weight + rng.uniform(-1.2, 0.9), 1)
        out.append({
            **observation(f"bp-{n + 1:02d}", "vital-signs",
                          cc(LOINC, "85354-9", "Blood pressure panel with all children optional"),
                          when, {}),
            "component": [
                {"code": cc(LOINC, "8480-6", "Systolic blood pressure"),
                 "valueQuantity": {"value": rng.randint(124, 146), "unit": "mmHg", "system": UCUM,
                                   "code": "mm[Hg]"}},
                {"code": cc(LOINC, "8462-4", "Diastolic blood pressure"),
                 "valueQuantity": {"value": rng.randint(76, 92), "unit": "mmHg", "system": UCUM,
                                   "code": "mm[Hg]"}},
            ],
        })
        out.append(observation(f"weight-{n + 1:02d}", "vital-signs",
                               cc(LOINC, "29463-7", "Body weight"), when, quantity(weight, "kg")))
        out.append(observation(f"bmi-{n + 1:02d}", "vital-signs",
                               cc(LOINC, "39156-5", "Body mass index (BMI) [Ratio]"), when,
                               quantity(round(weight / 1.78**2, 1), "kg/m2")))
        out.append(observation(f"hr-{n + 1:02d}", "vital-signs", cc(LOINC, "8867-4", "Heart rate"),
                               when, quantity(rng.randint(62, 88), "/min")))
    for year in LAB_YEARS:
        when = f"{year}-09-14T07:45:00Z"
        for suffix, code, display, unit, low, high, decimals in LABS:
            value = round(rng.uniform(low, high), decimals)
            out.append(observation(f"{suffix}-{year}", "laboratory", cc(LOINC, code, display), when,
                                   quantity(int(value) if decimals == 0 else value, unit)))
    return out


def build() -> dict[str, Any]:
    """The large patient's collection Bundle."""
    rng = random.Random(SEED)
    patient = {
        "resourceType": "Patient",
        "id": PID,
        "identifier": [{"use": "usual", "system": "https://ehr.example.org/mrn",
                        "value": "MRN-100299"}],
        "active": True,
        "name": [{"use": "official", "family": "Idowu", "given": ["Samuel"]}],
        "gender": "male",
        "birthDate": "1986-07-04",
    }
    requests, dispenses = prescriptions_and_fills()
    resources = [patient, *conditions(), *statements(), *requests, *dispenses, *observations(rng)]
    return {
        "resourceType": "Bundle",
        "id": f"{PID}-record",
        "meta": {"lastUpdated": "2026-11-26T08:00:00Z"},
        "type": "collection",
        "timestamp": "2026-11-26T08:00:00Z",
        "entry": [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r}
                  for r in resources],
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the file on disk differs from what this script writes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/make_large_fixture.py")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(build()['entry'])} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
