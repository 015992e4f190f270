#!/usr/bin/env python3
"""Generate fixtures/orders/<case>.json: CDS Hooks 2.0 order-sign / order-select requests.

Each case below is a few lines: which fixture patient (fixtures/patients/<patient>.json), which
hook, which draft orders, which orders are already planned (active ServiceRequests the EHR
returns for the `serviceRequests` prefetch key) and, for order-select, which drafts were just
selected. Every request carries:
  - `hook` and a fixed `hookInstance` (uuid5(NAMESPACE_URL, case name)), so the output is
    byte-for-byte reproducible;
  - `context`: `userId` Practitioner/example, `patientId`, `encounterId` (the visit the orders are
    placed in), `selections` (order-select only) and `draftOrders`, a collection Bundle of
    `status: draft` ServiceRequests and MedicationRequests with ids `<case>-<what>`;
  - `prefetch` filled for every key of service.registry ORDER_PREFETCH: the patient-view keys
    from the patient Bundle (as scripts/make_requests.py does) plus `serviceRequests`, a
    searchset Bundle of the planned procedures (empty when none);
  - no `fhirServer`: the service needs nothing else.

Codes: CPT http://www.ama-assn.org/go/cpt (15780 dermabrasion total face, 15789 chemical peel
facial dermal), the service's local acne-scar-procedure CodeSystem, RxNorm (isotretinoin as the
verified SCD 197845, tretinoin 0.1% gel 313453; other drugs as ingredient codes with the
product in `text`), and orders described only in words (text-only ServiceRequests). The fixture
date is 2026-11-26 (fixtures/README.md).

Usage:  python scripts/make_order_requests.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/make_order_requests.py`
    sys.path.insert(0, str(ROOT))

from scripts.make_requests import USER, dumps, hook_instance, patient_request, searchset  # noqa: E402
from service.registry import ORDER_PREFETCH  # noqa: E402

PATIENTS = ROOT / "fixtures" / "patients"
ORDERS = ROOT / "fixtures" / "orders"
TODAY = "2026-11-26"
CPT = "http://www.ama-assn.org/go/cpt"
PROCEDURE = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-procedure"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
SURGICAL = {"system": SNOMED, "code": "387713003", "display": "Surgical procedure"}
ORAL = {"system": SNOMED, "code": "26643006", "display": "Oral route"}
TOPICAL = {"system": SNOMED, "code": "6064005", "display": "Topical route"}


# ----- orders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Procedure:
    """A procedure order: coded in CPT or the local CodeSystem, or text only."""

    what: str  # the id suffix: <case>-<what>
    text: str
    cpt: tuple[str, str] | None = None  # (code, display)
    local: tuple[str, str] | None = None
    occurrence: str | None = None
    body_site: str = "Face"


@dataclass(frozen=True)
class Drug:
    """A prescription: RxNorm code and display, product text, dosage text, route."""

    what: str
    rxnorm: tuple[str, str]
    text: str
    dosage: str
    route: Mapping[str, str] = field(default_factory=lambda: ORAL)
    quantity: tuple[int, str] | None = None  # (value, unit)
    days: int | None = None
    by_reference: bool = False  # medicationReference to a Medication the request does not carry


Order = Procedure | Drug


def procedure_request(case: str, patient: str, order: Procedure, status: str) -> dict[str, Any]:
    """A ServiceRequest for a scar procedure, as an EHR's order entry writes it."""
    coding = []
    if order.cpt:
        coding.append({"system": CPT, "code": order.cpt[0], "display": order.cpt[1]})
    if order.local:
        coding.append({"system": PROCEDURE, "code": order.local[0], "display": order.local[1]})
    code: dict[str, Any] = {"coding": coding, "text": order.text} if coding else {"text": order.text}
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"{case}-{order.what}",
        "status": status,
        "intent": "order",
        "category": [{"coding": [SURGICAL]}],
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter(case)}"},
    }
    if order.occurrence:
        resource["occurrenceDateTime"] = order.occurrence
    resource |= {
        "authoredOn": TODAY,
        "requester": {"reference": USER},
        "reasonReference": [{"reference": f"Condition/{patient}-acne-scar"}],
        "bodySite": [{"text": order.body_site}],
    }
    return resource


def medication_request(case: str, patient: str, order: Drug) -> dict[str, Any]:
    """A draft MedicationRequest with an RxNorm code and the product in `text`."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"{case}-{order.what}",
        "status": "draft",
        "intent": "order",
        **({"medicationReference": {"reference": f"Medication/{case}-{order.what}-medication"}} if order.by_reference
           else {"medicationCodeableConcept": {
               "coding": [{"system": RXNORM, "code": order.rxnorm[0], "display": order.rxnorm[1]}],
               "text": order.text}}),
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter(case)}"},
        "authoredOn": TODAY,
        "requester": {"reference": USER},
        "dosageInstruction": [{"text": order.dosage, "route": {"coding": [dict(order.route)]}}],
    }
    if order.quantity:
        request: dict[str, Any] = {"quantity": {"value": order.quantity[0], "unit": order.quantity[1]}}
        if order.days:
            request["expectedSupplyDuration"] = {"value": order.days, "unit": "days", "system": UCUM,
                                                 "code": "d"}
        resource["dispenseRequest"] = request
    return resource


def encounter(case: str) -> str:
    return f"{case}-visit"


# The orders the cases use. Codes: CPT 15780 / 15789 (AMA), local acne-scar-procedure, RxNorm.
CO2_LASER = Procedure("co2-laser", "Full-face ablative CO2 laser resurfacing, acne scars",
                      local=("ablative-laser-resurfacing", "Fully ablative laser resurfacing (CO2 or Er:YAG), "
                             "full field"))
LASER_PUNCH_OUT = Procedure("laser-punch-out", "Laser punch-out (CO2) of ice-pick scars, both cheeks",
                            body_site="Both cheeks")
DERMABRASION = Procedure("dermabrasion", "Dermabrasion, total face",
                         cpt=("15780", "Dermabrasion; total face (eg, for acne scarring, fine wrinkling, "
                              "rhytids, general keratosis)"))
DERMAL_PEEL = Procedure("dermal-peel", "Chemical peel, facial, dermal (35% TCA)",
                        cpt=("15789", "Chemical peel, facial; dermal"))
DEEP_PEEL = Procedure("deep-peel", "Deep chemical peel (phenol-croton oil), full face")
NON_ABLATIVE = Procedure("non-ablative-laser", "Non-ablative fractional 1550 nm laser, low density, face",
                         local=("non-ablative-fractional-laser", "Non-ablative fractional laser"))
PUNCH_EXCISION = Procedure("punch-excision", "Punch excision of ice-pick scars, left cheek",
                           local=("punch-excision", "Punch excision"), body_site="Left cheek")
TCA_CROSS = Procedure("tca-cross", "TCA CROSS 100%, ice-pick scars, cheeks", body_site="Both cheeks")
SUBCISION = Procedure("subcision", "Subcision, rolling scars, cheeks",
                      local=("subcision", "Subcision"), body_site="Both cheeks")
MICRONEEDLING = Procedure("microneedling", "Microneedling 1.5 mm, face, series of 3")
MICRODERMABRASION = Procedure("microdermabrasion", "Microdermabrasion, face, series of 3")
MEDIUM_PEEL = Procedure("medium-peel", "35% TCA peel, full face")
# A draft naming its medication only by a reference the service cannot follow (no display, the
# Medication neither contained nor prefetched, no fhirServer): what it is cannot be identified.
UNIDENTIFIED_DRUG = Drug("unidentified-drug", ("", ""), "", "1 capsule by mouth once daily", by_reference=True)

ISOTRETINOIN = Drug("isotretinoin", ("197845", "isotretinoin 40 MG Oral Capsule"),
                    "isotretinoin 40 MG Oral Capsule", "40 mg by mouth once daily with food",
                    quantity=(30, "capsule"), days=30)
TRETINOIN_GEL = Drug("tretinoin-gel", ("313453", "tretinoin 0.1% topical gel"),
                     "tretinoin 0.1% topical gel", "Apply a thin layer to the face once nightly",
                     route=TOPICAL, quantity=(45, "g"))
CLINDAMYCIN_GEL = Drug("clindamycin-gel", ("2582", "clindamycin"), "clindamycin 1% topical gel",
                       "Apply a thin layer to affected areas twice daily", route=TOPICAL,
                       quantity=(60, "g"))
VALACYCLOVIR = Drug("valacyclovir", ("73645", "valacyclovir"), "valacyclovir 500 mg oral tablet",
                    "500 mg by mouth twice daily, starting the day before the procedure, for 7 days",
                    quantity=(14, "tablet"), days=7)


# ----- cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One fixture: a patient, a hook, draft orders, orders already planned, selections."""

    name: str
    patient: str
    drafts: Sequence[Order]
    hook: str = "order-sign"
    selected: Sequence[Order] = ()  # order-select: the drafts just selected
    planned: Sequence[Procedure] = ()  # active ServiceRequests (prefetch serviceRequests)


CASES: tuple[Case, ...] = (
    # R3: fully ablative laser, laser punch-out, mechanical dermabrasion < 6 months after isotretinoin
    Case("ablative-after-isotretinoin", "isotretinoin-2-months",
         [CO2_LASER, LASER_PUNCH_OUT, DERMABRASION]),
    # R5: a retinoid for a pregnant patient (order-select: only the retinoid is selected)
    Case("retinoid-pregnant", "pregnant", [ISOTRETINOIN, CLINDAMYCIN_GEL], hook="order-select",
         selected=[ISOTRETINOIN]),
    Case("retinoid-pregnant-topical-tretinoin", "pregnant", [TRETINOIN_GEL]),
    # R3 the other way round: isotretinoin while ablative laser / dermabrasion is planned
    Case("isotretinoin-with-planned-procedure", "active-acne", [ISOTRETINOIN],
         planned=[Procedure("planned-co2-laser", CO2_LASER.text, local=CO2_LASER.local,
                            occurrence="2027-02-15T09:00:00Z")]),
    Case("isotretinoin-with-procedure-in-batch", "active-acne",
         [ISOTRETINOIN, Procedure(DERMABRASION.what, DERMABRASION.text, cpt=DERMABRASION.cpt,
                                  occurrence="2027-01-14T09:00:00Z")]),
    # R4: full-field ablative laser, deep peel, dermal peel with Fitzpatrick V (R3 stacks on the laser)
    Case("ablative-fitzpatrick-v", "stacked-isotretinoin-fitzpatrick-v", [CO2_LASER, DEEP_PEEL, DERMAL_PEEL]),
    # R6: punch excision and TCA CROSS with a keloid history; subcision is not a keloid risk here
    Case("punch-with-keloid", "keloid-history", [PUNCH_EXCISION, TCA_CROSS, SUBCISION]),
    # R7: resurfacing with a herpes simplex history (no antiviral), with valacyclovir, and active
    Case("resurfacing-herpes-history", "herpes-history", [CO2_LASER]),
    Case("resurfacing-herpes-history-with-valacyclovir", "herpes-history", [CO2_LASER, VALACYCLOVIR]),
    Case("resurfacing-herpes-active", "herpes-active", [DERMABRASION]),
    # Guideline v2: tretinoin ordered for a pregnancy coded in ICD-10-CM only (Z33.1 + Z3A.10)
    Case("retinoid-pregnant-icd10-topical-tretinoin", "pregnant-icd10", [TRETINOIN_GEL]),
    # v2 R7: prophylaxis for every patient having resurfacing, whatever their herpes history
    Case("resurfacing-prophylaxis", "icepick-moderate", [CO2_LASER]),
    Case("resurfacing-antiviral-on-record", "herpes-history-antiviral", [CO2_LASER]),
    # v2 R3: a medium peel within 6 months of isotretinoin (information, no removal)
    Case("medium-peel-after-isotretinoin", "isotretinoin-2-months", [MEDIUM_PEEL]),
    # v2 §1: isotretinoin that cannot be identified (the Medication is not available) and a laser
    Case("ablative-with-unidentified-medication", "isotretinoin-medication-unavailable", [CO2_LASER]),
    # v2 R5: pregnancy status uncertain (O21.0): a retinoid and a procedure wait for it
    Case("retinoid-and-procedure-pregnancy-uncertain", "pregnancy-uncertain", [TRETINOIN_GEL, PUNCH_EXCISION]),
    # Cards no other case shows: isotretinoin current or of unknown last dose and a laser; a
    # procedure in pregnancy; a medication that cannot be identified in pregnancy; a punch
    # excision with active herpes (the clinician's judgement at the site)
    Case("ablative-isotretinoin-current", "isotretinoin-current", [CO2_LASER]),
    Case("ablative-isotretinoin-last-dose-unknown", "isotretinoin-no-end-date", [LASER_PUNCH_OUT]),
    Case("procedure-pregnant", "pregnant", [PUNCH_EXCISION]),
    Case("unidentified-drug-pregnant", "pregnant", [UNIDENTIFIED_DRUG]),
    Case("punch-excision-herpes-active", "herpes-active", [PUNCH_EXCISION]),
    # Safe orders: no card
    Case("safe-orders-after-isotretinoin", "isotretinoin-2-months", [SUBCISION, PUNCH_EXCISION, MICRONEEDLING]),
    Case("safe-orders-non-ablative-fitzpatrick-v", "stacked-isotretinoin-fitzpatrick-v", [NON_ABLATIVE]),
    Case("safe-orders-microdermabrasion", "isotretinoin-2-months", [MICRODERMABRASION]),
    Case("safe-orders-non-retinoid-pregnant", "pregnant", [CLINDAMYCIN_GEL]),
    # order-select: a risky draft that is not selected gets no card
    Case("order-select-unselected-risky", "isotretinoin-2-months", [CO2_LASER, SUBCISION],
         hook="order-select", selected=[SUBCISION]),
)


def resource_of(case: Case, order: Order, status: str = "draft") -> dict[str, Any]:
    if isinstance(order, Drug):
        return medication_request(case.name, case.patient, order)
    return procedure_request(case.name, case.patient, order, status)


def reference(case: Case, order: Order) -> str:
    kind = "MedicationRequest" if isinstance(order, Drug) else "ServiceRequest"
    return f"{kind}/{case.name}-{order.what}"


def order_request(case: Case, patients_dir: Path = PATIENTS) -> dict[str, Any]:
    """The CDS Hooks request of one case."""
    bundle = json.loads((patients_dir / f"{case.patient}.json").read_text(encoding="utf-8"))
    base = patient_request(case.name, bundle, ORDER_PREFETCH)
    if base["context"]["patientId"] != case.patient:
        raise ValueError(f"{case.name}: fixtures/patients/{case.patient}.json holds another patient")
    drafts = [resource_of(case, o) for o in case.drafts]
    planned = [resource_of(case, p, status="active") for p in case.planned]
    for resource in drafts + planned:
        if len(resource["id"]) > 64:
            raise ValueError(f"{case.name}: id {resource['id']!r} is longer than a FHIR id may be")
    context: dict[str, Any] = {"userId": USER, "patientId": case.patient, "encounterId": encounter(case.name)}
    if case.hook == "order-select":
        if not case.selected or any(s not in case.drafts for s in case.selected):
            raise ValueError(f"{case.name}: order-select needs selections among the drafts")
        context["selections"] = [reference(case, s) for s in case.selected]
    elif case.selected:
        raise ValueError(f"{case.name}: only order-select has selections")
    context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": r} for r in drafts]}
    prefetch = dict(base["prefetch"])
    prefetch["serviceRequests"] = searchset([{"resource": r} for r in planned])
    return {"hook": case.hook, "hookInstance": hook_instance(case.name), "context": context,
            "prefetch": {key: prefetch[key] for key in ORDER_PREFETCH}}


def build_all(patients_dir: Path = PATIENTS) -> dict[str, str]:
    """File name -> file text of every request this script writes."""
    names = [c.name for c in CASES]
    if len(set(names)) != len(names):
        raise ValueError("two cases share a name")
    return {f"{c.name}.json": dumps(order_request(c, patients_dir)) for c in CASES}


def stale(wanted: Mapping[str, str], directory: Path = ORDERS) -> list[str]:
    """Files that differ from what this script writes, are missing, or are left over."""
    changed = [n for n, text in wanted.items()
               if not (directory / n).exists() or (directory / n).read_text(encoding="utf-8") != text]
    extra = sorted(p.name for p in directory.glob("*.json") if p.name not in wanted)
    return changed + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if fixtures/orders differs from what this script writes")
    args = parser.parse_args(argv)
    wanted = build_all()
    if args.check:
        problems = stale(wanted)
        for name in problems:
            print(f"fixtures/orders/{name} is out of date or left over: "
                  "run .venv/bin/python scripts/make_order_requests.py")
        return 1 if problems else 0
    ORDERS.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (ORDERS / name).write_text(text, encoding="utf-8")
    for name in stale(wanted):  # left over from a removed case
        (ORDERS / name).unlink()
    print(f"wrote {len(wanted)} requests to {ORDERS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
