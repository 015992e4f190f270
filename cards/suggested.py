"""The resources a clinician can accept with one click, built from the content in one place.

Every draft the rules suggest is built here, from a catalogue template and two values of the
chart: the patient's id and the references of the scar Conditions the order is for. `every_draft`
builds each kind with a stand-in patient, so that start-up checks them all with the full FHIR
rules (cards.card_check) before any patient call can send one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cards.catalogue import Catalogue
from cards.procedures import Procedure
from cards.terminology import SNOMED

TOPICAL_ROUTE = {"system": SNOMED, "code": "6064005", "display": "Topical route"}


def procedure_request(
    procedure: Procedure, patient_id: str, system: str, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    """A draft ServiceRequest for a scar procedure, for the scar Conditions `reasons`."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {
            "coding": [{"system": system, "code": procedure.code, "display": procedure.display}],
            "text": procedure.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if reasons:  # CDS Hooks JSON rule: omit, never empty
        resource["reasonReference"] = [{"reference": r} for r in reasons]
    return resource


def retinoid_request(catalogue: Catalogue, patient_id: str, reasons: Sequence[str]) -> dict[str, Any]:
    """A draft prescription of the maintenance topical retinoid (R1), for the scar Conditions."""
    spec: Mapping[str, Any] = catalogue.suggestions["retinoid"]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {"coding": [dict(spec["coding"])], "text": spec["text"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": [{"text": spec["dosage"], "route": {"coding": [TOPICAL_ROUTE]}}],
    }
    if reasons:
        resource["reasonReference"] = [{"reference": r} for r in reasons]
    return resource


def antiviral_request(catalogue: Catalogue, patient_id: str) -> dict[str, Any]:
    """A draft prescription of antiviral prophylaxis (R7, v2: the full 10-14 day regimen)."""
    spec = catalogue.suggestions["antiviral"]
    return {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {"text": spec["text"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": [{"text": spec["dosage"]}],
    }


def every_draft(
    catalogue: Catalogue, procedures: Mapping[str, Procedure], system: str, patient_id: str, reason: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every draft the builders above can make, by name, with and without a reason."""
    for procedure in procedures.values():
        yield f"procedure {procedure.code!r}", procedure_request(procedure, patient_id, system)
        yield f"procedure {procedure.code!r} with a reason", procedure_request(procedure, patient_id, system, [reason])
    yield "the retinoid", retinoid_request(catalogue, patient_id, ())
    yield "the retinoid with a reason", retinoid_request(catalogue, patient_id, [reason])
    yield "the antiviral", antiviral_request(catalogue, patient_id)
