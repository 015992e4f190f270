"""Select, then validate: pick out the FHIR resources the rules read, and validate only those.

An EHR may send hundreds of resources; validating each with the pydantic models of
fhir.resources costs time, so a cheap look at the raw JSON (type and codes) comes first.
A resource whose shape is too broken to judge is kept, so that validation reports it rather
than the selection silently passing it over. Models are FHIR R4B, wire-compatible with R4 for
these resource types.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
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
from cards.terminology import Terminology, ValueSet

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
        """"Type/id", shortened: an id longer than FHIR allows is not echoed in full."""
        return f"{str(self.data.get('resourceType'))[:40]}/{str(self.data.get('id', '(no id)'))[:64]}"


class Selector:
    """Decides cheaply, on raw JSON, which resources the rules read."""

    def __init__(self, terminology: Terminology) -> None:
        self.conditions = terminology.union(CONDITION_SETS)
        self.observations = terminology.union(OBSERVATION_SETS)
        self.medications = terminology.union(MEDICATION_SETS)

    @staticmethod
    def _in(concept: Any, valueset: ValueSet) -> bool:
        """Is a raw CodeableConcept in the value set, by a code or by its text and displays?
        Runs for every resource received (hundreds), so it reads the JSON as it is."""
        if concept is None:
            return False
        if not isinstance(concept, dict):
            raise Unjudgeable
        codings = concept.get("coding", [])
        if not isinstance(codings, list) or not all(isinstance(c, dict) for c in codings):
            raise Unjudgeable
        if any(valueset.has_code(str(c.get("system", "")), str(c.get("code", ""))) for c in codings):
            return True
        return any(isinstance(t, str) and valueset.has_text(t)
                   for t in (concept.get("text"), *(c.get("display") for c in codings)))

    def _medication_concept(self, data: dict[str, Any]) -> Any:
        if "medicationCodeableConcept" in data:
            return data["medicationCodeableConcept"]
        ref = data.get("medicationReference")
        if not isinstance(ref, dict):
            raise Unjudgeable
        # A contained or separately sent Medication is selected on its own code; here the
        # reference's display is all there is to go on.
        return {"text": ref.get("display")}

    def is_needed(self, data: dict[str, Any], medications: frozenset[str] = frozenset()) -> bool:
        """True when the rules read this resource, or when its shape is too broken to tell.
        `medications`: references ("Medication/1") of sent Medications the rules read, so that
        a statement pointing at one is read too."""
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
                if self._refers_to_contained_medication(data) or _refers_to(data, medications):
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


@functools.cache
def _is_fhir_type(kind: str) -> bool:
    """A resource type FHIR R4 defines ("Condition", not "condition"): an entry of another type
    is broken data, not data the rules can skip."""
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return True


def _refers_to(data: dict[str, Any], references: frozenset[str]) -> bool:
    ref = data.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, dict) else None
    return isinstance(target, str) and any(target.endswith(r) for r in references)


def _needed_medications(resources: list[RawResource], selector: Selector) -> frozenset[str]:
    """References of the Medication resources sent alongside that the rules read."""
    return frozenset(
        f"Medication/{raw.data.get('id')}" for raw in resources
        if raw.data.get("resourceType") == "Medication" and selector.is_needed(raw.data)
    )


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
    if problems := _non_string_dates(raw.data):
        raise InvalidResource(raw.reference, problems, raw.origin)
    try:
        return model.model_validate(raw.data)
    except ValidationError as exc:
        raise InvalidResource(raw.reference, _problems(exc), raw.origin) from None
    except RecursionError:
        raise InvalidResource(raw.reference, ["nested too deeply to read"], raw.origin) from None


# Date elements the rules read. FHIR dates are JSON strings; pydantic would read the number
# 20260926 as a Unix time (1970-08-23) and end an isotretinoin window decades early.
DATE_KEYS = frozenset({
    "start", "end", "effectiveDateTime", "effectiveInstant", "issued", "whenHandedOver",
    "whenPrepared", "authoredOn", "onsetDateTime", "abatementDateTime", "recordedDate",
    "birthDate", "occurrenceDateTime",
})


def _non_string_dates(data: Any, path: str = "") -> list[str]:
    if isinstance(data, dict):
        problems = [f"{path}{key}: a FHIR date must be a string, not {type(value).__name__}"
                    for key, value in data.items()
                    if key in DATE_KEYS and value is not None and not isinstance(value, str | dict)]
        for key, value in data.items():
            if isinstance(value, dict | list):
                problems += _non_string_dates(value, f"{path}{key}.")
        return problems
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in _non_string_dates(item, f"{path[:-1]}[{i}].")]
    return []


def select_and_validate(
    resources: Iterable[RawResource], patient_id: str, selector: Selector
) -> list[FHIRResourceModel]:
    """The resources the rules read, validated and deduplicated by type and id."""
    resources = list(resources)
    references = _needed_medications(resources, selector)
    seen: set[str] = set()
    chosen: list[FHIRResourceModel] = []
    for raw in _unique(resources, seen):
        kind = raw.data.get("resourceType")
        if not isinstance(kind, str) or not _is_fhir_type(kind):
            raise InvalidResource(raw.reference, ["resourceType must name a FHIR R4 resource type"], raw.origin)
        if kind in MODELS and selector.is_needed(raw.data, references):
            _check_patient(raw, patient_id)
            chosen.append(validate(raw))
    return chosen


def _unique(resources: Iterable[RawResource], seen: set[str]) -> Iterator[RawResource]:
    for raw in resources:
        if "id" in raw.data:
            reference = raw.reference
            if reference in seen:
                continue
            seen.add(reference)
        yield raw
