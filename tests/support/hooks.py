"""Hook requests for the service's tests: a patient-view call with a small, exact patient."""

from __future__ import annotations

import copy
from typing import Any

from service.registry import PATIENT_VIEW_PREFETCH
from tests.support.fhir import patient, searchset

SERVICE_URL = "/cds-services/acne-scar-treatment"
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"

KEY_TYPES = {
    "conditions": "Condition",
    "medicationStatements": "MedicationStatement",
    "medicationRequests": "MedicationRequest",
    "medicationDispenses": "MedicationDispense",
    "observations": "Observation",
}


def hook_request(
    *resources: dict[str, Any], pid: str = "p1", omit: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
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
