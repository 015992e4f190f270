"""Select, then validate: pick out the FHIR resources the rules read, and validate only those.

An EHR may send hundreds of resources; validating each with the pydantic models of
fhir.resources costs time, so a cheap look at the raw JSON (type and codes) comes first.
A resource whose shape is too broken to judge is kept, so that validation reports it rather
than the selection silently passing it over. Models are FHIR R4B, wire-compatible with R4 for
these resource types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cards.errors import InvalidResource, WrongPatient
from cards.terminology import Coding, Terminology, ValueSet

MODELS: dict[str, type[FHIRResourceModel]] = {
    "Patient": Patient,
    "Condition": Condition,
    "Observation": Observation,
    "MedicationStatement": MedicationStatement,
    "MedicationRequest": MedicationRequest,
    "MedicationDispense": MedicationDispense,
    "Medication": Medication,
    "ServiceRequest": ServiceRequest,
}
MEDICATION_USE = ("MedicationStatement", "MedicationRequest", "MedicationDispense")
CONDITION_SETS = ("acne-scar", "skin-scar-unspecified", "acne", "pregnant", "keloid", "herpes-simplex")
OBSERVATION_SETS = ("fitzpatrick-skin-type", "scar-grade", "pregnancy-status")
MEDICATION_SETS = ("isotretinoin", "topical-retinoid-product", "retinoid-ingredient", "oral-retinoid",
                   "hsv-antiviral")


class Unjudgeable(Exception):
    """The raw JSON is too malformed to tell whether the rules need it."""


@dataclass(frozen=True)
class RawResource:
    """A resource as received, with where it came from (a prefetch key or a fetch URL)."""

    data: dict[str, Any]
    origin: str

    @property
    def reference(self) -> str:
        return f"{self.data.get('resourceType')}/{self.data.get('id', '(no id)')}"


def raw_codings(concept: Any) -> tuple[list[Coding], list[str | None]]:
    """Codings and texts of a raw CodeableConcept; raises Unjudgeable on a wrong shape."""
    if concept is None:
        return [], []
    if not isinstance(concept, dict) or not isinstance(concept.get("coding", []), list):
        raise Unjudgeable
    codings, texts = [], [concept.get("text")]
    for c in concept.get("coding", []):
        if not isinstance(c, dict):
            raise Unjudgeable
        codings.append(Coding(str(c.get("system", "")), str(c.get("code", "")), c.get("display")))
        texts.append(c.get("display"))
    return codings, [t if isinstance(t, str) else None for t in texts]


class Selector:
    """Decides cheaply, on raw JSON, which resources the rules read."""

    def __init__(self, terminology: Terminology) -> None:
        self.conditions = terminology.union(CONDITION_SETS)
        self.observations = terminology.union(OBSERVATION_SETS)
        self.medications = terminology.union(MEDICATION_SETS)

    @staticmethod
    def _in(concept: Any, valueset: ValueSet) -> bool:
        codings, texts = raw_codings(concept)
        return valueset.matches(codings, texts)

    def _medication_concept(self, data: dict[str, Any]) -> Any:
        if "medicationCodeableConcept" in data:
            return data["medicationCodeableConcept"]
        ref = data.get("medicationReference")
        if not isinstance(ref, dict):
            raise Unjudgeable
        # A contained or separately sent Medication is selected on its own code; here the
        # reference's display is all there is to go on.
        return {"text": ref.get("display")}

    def is_needed(self, data: dict[str, Any]) -> bool:
        """True when the rules read this resource, or when its shape is too broken to tell."""
        kind = data.get("resourceType")
        try:
            if kind in ("Patient", "ServiceRequest"):
                return True  # one Patient; procedure orders are few, and read by code or text
            if kind == "Condition":
                return self._in(data.get("code"), self.conditions)
            if kind == "Observation":
                return self._in(data.get("code"), self.observations)
            if kind == "Medication":
                return self._in(data.get("code"), self.medications)
            if kind in MEDICATION_USE:
                if self._refers_to_contained_medication(data):
                    return True
                return self._in(self._medication_concept(data), self.medications)
        except Unjudgeable:
            return True
        return False

    def _refers_to_contained_medication(self, data: dict[str, Any]) -> bool:
        ref = data.get("medicationReference")
        contained = data.get("contained")
        if not (isinstance(ref, dict) and isinstance(contained, list)):
            return False
        return str(ref.get("reference", "")).startswith("#")


def _subject_id(data: dict[str, Any]) -> str | None:
    subject = data.get("subject") or data.get("patient")
    if not isinstance(subject, dict) or not isinstance(subject.get("reference"), str):
        return None
    return subject["reference"]


def _check_patient(raw: RawResource, patient_id: str) -> None:
    if raw.data.get("resourceType") == "Patient":
        if raw.data.get("id") not in (None, patient_id):
            raise WrongPatient(raw.reference, raw.reference, patient_id)
        return
    subject = _subject_id(raw.data)
    if subject is None:
        return  # came from a patient-scoped query; the subject is optional on some types
    if subject != f"Patient/{patient_id}" and not subject.endswith(f"/Patient/{patient_id}"):
        raise WrongPatient(raw.reference, subject, patient_id)


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(resource)"
        problems.append(f"{where}: {error['msg']}")
    if exc.error_count() > 5:
        problems.append(f"and {exc.error_count() - 5} more problems")
    return problems


def validate(raw: RawResource) -> FHIRResourceModel:
    """Validate one resource with its fhir.resources model; InvalidResource on failure."""
    model = MODELS[raw.data["resourceType"]]
    try:
        return model.model_validate(raw.data)
    except ValidationError as exc:
        raise InvalidResource(raw.reference, _problems(exc), raw.origin) from None


def select_and_validate(
    resources: Iterable[RawResource], patient_id: str, selector: Selector
) -> list[FHIRResourceModel]:
    """The resources the rules read, validated and deduplicated by type and id."""
    seen: set[str] = set()
    chosen: list[FHIRResourceModel] = []
    for raw in _unique(resources, seen):
        if raw.data.get("resourceType") in MODELS and selector.is_needed(raw.data):
            _check_patient(raw, patient_id)
            chosen.append(validate(raw))
    return chosen


def _unique(resources: Iterable[RawResource], seen: set[str]) -> Iterator[RawResource]:
    for raw in resources:
        if "id" in raw.data:
            if raw.reference in seen:
                continue
            seen.add(raw.reference)
        yield raw
