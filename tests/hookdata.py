"""Builders of hook requests and FHIR resources for tests that need a small, exact patient."""

from __future__ import annotations

import copy
from typing import Any

from service.registry import PATIENT_VIEW_PREFETCH

MORPHOLOGY = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-morphology"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SERVICE_URL = "/cds-services/acne-scar-treatment"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"


def patient(pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1996-04-02", "gender": "female"}


SEVERITY = {"mild": "255604002", "moderate": "6736007", "severe": "24484000"}


def icepick_scar(pid: str = "p1", cid: str = "scar1", severity: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"}]},
        "code": {"coding": [{"system": MORPHOLOGY, "code": "ice-pick",
                             "display": "Ice-pick (pin prick) acne scar"}],
                 "text": "Ice-pick acne scars, cheeks"},
    }
    if severity:
        resource["severity"] = {"coding": [{"system": "http://snomed.info/sct",
                                            "code": SEVERITY[severity], "display": severity}]}
    return resource


def isotretinoin_statement(pid: str = "p1", end: str | None = "2026-09-26",
                           status: str = "completed") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": "iso1",
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "197843"}],
            "text": "isotretinoin 20 MG Oral Capsule",
        },
    }
    if end:
        resource["effectivePeriod"] = {"start": "2026-03-01", "end": end}
    return resource


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


KEY_TYPES = {
    "conditions": "Condition",
    "medicationStatements": "MedicationStatement",
    "medicationRequests": "MedicationRequest",
    "medicationDispenses": "MedicationDispense",
    "observations": "Observation",
}


def hook_request(*resources: dict[str, Any], pid: str = "p1",
                 omit: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A patient-view request whose prefetch holds `resources` (plus the Patient), with the
    keys in `omit` left out."""
    prefetch: dict[str, Any] = {"patient": patient(pid)}
    for key, kind in KEY_TYPES.items():
        prefetch[key] = searchset(*[copy.deepcopy(r) for r in resources if r["resourceType"] == kind])
    assert set(prefetch) == set(PATIENT_VIEW_PREFETCH)
    body = {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        "context": {"userId": "Practitioner/example", "patientId": pid},
        "prefetch": {k: v for k, v in prefetch.items() if k not in omit},
    }
    body.update(extra)
    return body
