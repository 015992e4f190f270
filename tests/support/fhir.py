"""Builders of FHIR resources for tests that need a small, exact patient (no `service` here:
the core's tests use them too)."""

from __future__ import annotations

from typing import Any

MORPHOLOGY = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-morphology"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def patient(pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1996-04-02", "gender": "female"}


SEVERITY = {"mild": "255604002", "moderate": "6736007", "severe": "24484000"}


def icepick_scar(pid: str = "p1", cid: str = "scar1", severity: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "verificationStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]
        },
        "code": {
            "coding": [{"system": MORPHOLOGY, "code": "ice-pick", "display": "Ice-pick (pin prick) acne scar"}],
            "text": "Ice-pick acne scars, cheeks",
        },
    }
    if severity:
        resource["severity"] = {
            "coding": [{"system": "http://snomed.info/sct", "code": SEVERITY[severity], "display": severity}]
        }
    return resource


def isotretinoin_statement(
    pid: str = "p1", end: str | None = "2026-09-26", status: str = "completed"
) -> dict[str, Any]:
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
    """A searchset Bundle of `resources`, as a FHIR server answers a search (no `entry` when
    there are none: FHIR JSON has no empty arrays)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle
