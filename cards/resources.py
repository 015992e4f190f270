"""Select, then read: pick out the FHIR resources the rules read, and read only those.

An EHR may send hundreds of resources; validating each with the pydantic models of
fhir.resources costs time, so a cheap look at the raw JSON (type and codes) comes first.
A resource whose shape is too broken to judge is kept, so that reading reports it rather
than the selection silently passing it over. Models are FHIR R4B, wire-compatible with R4 for
these resource types.

Reading follows GUIDELINE §1 (v2), unreadable is not absent (`cards.reading`): what cannot be
read as it stands is repaired or left out, never refused and never dropped in silence. Whatever
a record mentions (codes and words of the guideline's value sets) that its reading lost, or a
record that cannot be read at all, or a record of another patient, becomes an `Unread` entry
with those topics, beside the models: the record step (`cards.record`) reads each topic
cautiously from it. Medications are followed by reference (contained, sent alongside, or
fetched by the service); a medication use whose medication cannot be identified is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
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

from cards.reading import read_once
from cards.terminology import Terminology, ValueSet
from cards.uses import Uses

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
ORDER_KINDS = ("MedicationRequest", "ServiceRequest")
# Topics of an unreadable record by its kind alone: a medication record (what it is cannot be
# told), an order (in an order hook, a draft that could not be read).
MEDICATION, ORDER = "medication", "order"
CONDITION_SETS = (
    "acne-scar",
    "skin-scar-unspecified",
    "acne",
    "pregnant",
    "pregnancy-uncertain",
    "keloid",
    "herpes-simplex",
)
OBSERVATION_SETS = ("fitzpatrick-skin-type", "scar-grade", "pregnancy-status")
MEDICATION_SETS = ("isotretinoin", "topical-retinoid-product", "retinoid-ingredient", "oral-retinoid", "hsv-antiviral")
# What a record can be about, for the rules: a record that mentions one of these value sets (by
# code or word) and cannot be read in full is read cautiously for that topic (cards.record).
TOPICS = (*CONDITION_SETS, *OBSERVATION_SETS, *MEDICATION_SETS)
# Where words are, in FHIR JSON (ids, references and URLs are not words about the patient).
WORD_KEYS = frozenset({"text", "display", "valueString", "description"})
# A reference to a Medication: relative, absolute or versioned (FHIR R4 §References).
MEDICATION_REFERENCE = re.compile(r"(?:^|/)Medication/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


class Unjudgeable(Exception):
    """The raw JSON is too malformed to tell whether the rules need it."""


@dataclass(frozen=True)
class RawResource:
    """A resource as received, with where it came from (a prefetch key or a fetch URL)."""

    data: dict[str, Any]
    origin: str

    @property
    def reference(self) -> str:
        """ "Type/id", shortened: an id longer than FHIR allows is not echoed in full."""
        kind = self.data.get("resourceType")
        kind = kind[:40] if isinstance(kind, str) and kind else "(no resourceType)"
        return f"{kind}/{str(self.data.get('id', '(no id)'))[:64]}"


@dataclass(frozen=True)
class Unread:
    """A record the rules may need that could not be read (in full): what it is, why, and the
    topics (value-set names) it mentions that its reading lost. A record of another patient
    (`foreign`) is about no topic of this patient's: it is only named, never read."""

    reference: str
    reason: str
    topics: frozenset[str]
    foreign: bool = False
    whole: bool = False  # nothing of it could be read (not only a part)

    def about(self, *topics: str) -> bool:
        return not self.foreign and not self.topics.isdisjoint(topics)


@dataclass(frozen=True)
class Selection:
    """The resources the rules read, as models; what could not be read; and, per reference,
    what was left out of a record that was read (for the cards' "Based on" lines)."""

    models: list[FHIRResourceModel] = field(default_factory=list)
    unread: tuple[Unread, ...] = ()
    left_out: Mapping[str, str] = field(default_factory=dict)


def medication_key(reference: Any) -> str | None:
    """ "Medication/<id>" of a reference to a Medication resource, or None."""
    if not isinstance(reference, str):
        return None
    match = MEDICATION_REFERENCE.search(reference)
    return f"Medication/{match.group(1)}" if match else None


@functools.lru_cache(maxsize=4096)
def _content_in(content: bytes, valueset: ValueSet) -> bool:
    return _concept_in(orjson.loads(content), valueset)


def _concept_in(concept: dict[str, Any], valueset: ValueSet) -> bool:
    """`Selector._in`, for a concept that is a JSON object."""
    codings = concept.get("coding", [])
    if not isinstance(codings, list) or not all(isinstance(c, dict) for c in codings):
        raise Unjudgeable
    if any(valueset.has_code(str(c.get("system", "")), str(c.get("code", ""))) for c in codings):
        return True
    return any(
        isinstance(t, str) and valueset.has_text(t) for t in (concept.get("text"), *(c.get("display") for c in codings))
    )


class Selector:
    """Decides cheaply, on raw JSON, which resources the rules read, and what a record mentions."""

    def __init__(self, terminology: Terminology) -> None:
        self.conditions = terminology.union(CONDITION_SETS)
        self.observations = terminology.union(OBSERVATION_SETS)
        self.medications = terminology.union(MEDICATION_SETS)
        self.topics = {name: terminology[name] for name in TOPICS}

    @staticmethod
    def _in(concept: Any, valueset: ValueSet) -> bool:
        """Is a raw CodeableConcept in the value set, by a code or by its text and displays?
        Runs for every resource received (hundreds), so it reads the JSON as it is, and answers
        once per concept's content: a chart repeats its concepts (one medication on every
        request and dispense)."""
        if concept is None:
            return False
        if not isinstance(concept, dict):
            raise Unjudgeable
        try:
            content = orjson.dumps(concept)
        except TypeError:  # a value orjson cannot write: judged afresh
            return _concept_in(concept, valueset)
        return _content_in(content, valueset)

    def _medication(self, concept: Any) -> bool:
        """A medication concept the rules read: one of the guideline's, or one that cannot be
        identified at all (no word, no known code): it might be isotretinoin (GUIDELINE §1)."""
        if concept is None or self._in(concept, self.medications):
            return True  # no medication at all is read (and said) too
        words = [concept.get("text"), *(c.get("display") for c in concept.get("coding", []))]
        return not any(isinstance(w, str) and w.strip() for w in words)

    def is_needed(self, data: dict[str, Any], medications: Mapping[str, bool] | None = None) -> bool:
        """True when the rules read this resource, or when its shape is too broken to tell.
        `medications`: the Medication resources sent alongside, by "Medication/<id>", and whether
        the rules read each; a use pointing at a Medication not among them is read too."""
        kind = data.get("resourceType")
        try:
            if kind in ("Patient", "ServiceRequest"):
                return True  # one Patient; procedure orders are few, and read by code or text
            if kind == "Condition":
                return self._in(data.get("code"), self.conditions)
            if kind == "Observation":
                return self._in(data.get("code"), self.observations)
            if kind == "Medication":
                return self._medication(data.get("code") or {})
            if kind in MEDICATION_USE:
                return self._use_is_needed(data, medications or {})
        except Unjudgeable:
            return True
        return False

    def _use_is_needed(self, data: dict[str, Any], medications: Mapping[str, bool]) -> bool:
        if "medicationCodeableConcept" in data:
            return self._medication(data["medicationCodeableConcept"])
        ref = data.get("medicationReference")
        if not isinstance(ref, dict):
            raise Unjudgeable  # no medication at all, or another shape: the reading decides
        target = ref.get("reference")
        if isinstance(target, str) and target.startswith("#"):
            return True  # contained: read with the use
        key = medication_key(target)
        if key is not None and key in medications:
            return medications[key]
        # Not sent alongside (nor fetched): the reference's display is all there is to go on, and
        # without one the medication cannot be identified (the rules say so).
        display = ref.get("display")
        return not (isinstance(display, str) and display.strip()) or self._in({"text": display}, self.medications)

    def mentions(self, data: Any) -> frozenset[str]:
        """The topics (value-set names) whose codes or words occur anywhere in a raw record."""
        codings, words = _codings_and_words(data)
        return frozenset(
            name
            for name, valueset in self.topics.items()
            if any(valueset.has_code(system, code) for system, code in codings)
            or any(valueset.has_text(word) for word in words)
        )


def _codings_and_words(data: Any) -> tuple[list[tuple[str, str]], list[str]]:
    codings: list[tuple[str, str]] = []
    words: list[str] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("code"), str | int) and isinstance(node.get("system"), str):
                codings.append((node["system"], str(node["code"])))  # a number is still the code it writes
            words += [v for k, v in node.items() if k in WORD_KEYS and isinstance(v, str)]
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
    return codings, words


@functools.cache
def _is_fhir_type(kind: str) -> bool:
    """A resource type FHIR R4 defines ("Condition", not "condition"): an entry of another type
    is broken data, not data the rules can skip."""
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return True


def _sent_medications(resources: Iterable[RawResource], selector: Selector) -> dict[str, bool]:
    """The Medication resources sent alongside, by reference, and whether the rules read each."""
    return {
        f"Medication/{raw.data.get('id')}": selector.is_needed(raw.data)
        for raw in resources
        if raw.data.get("resourceType") == "Medication" and isinstance(raw.data.get("id"), str)
    }


def unresolved_medications(resources: Iterable[RawResource]) -> list[str]:
    """References (as written) of Medications that medication uses name and that are neither
    contained nor among `resources`: the service reads these from fhirServer."""
    resources = list(resources)
    sent = {f"Medication/{r.data.get('id')}" for r in resources if r.data.get("resourceType") == "Medication"}
    wanted: dict[str, None] = {}
    for raw in resources:
        ref = raw.data.get("medicationReference") if raw.data.get("resourceType") in MEDICATION_USE else None
        target = ref.get("reference") if isinstance(ref, dict) else None
        key = medication_key(target)
        if key is not None and key not in sent and isinstance(target, str):
            wanted[target] = None
    return list(wanted)


def _subject_id(data: dict[str, Any]) -> str | None:
    subject = data.get("subject") or data.get("patient")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return reference if isinstance(reference, str) else None


def _is_other_patients(raw: RawResource, patient_id: str) -> bool:
    """A record naming another patient than the context's (never read: GUIDELINE §1 asks for no
    silent drop, and reading another patient's data would be worse)."""
    if raw.data.get("resourceType") == "Patient":
        return raw.data.get("id") not in (None, patient_id)
    subject = _subject_id(raw.data)
    if subject is None:
        return False  # came from a patient-scoped query; the subject is optional on some types
    return subject != f"Patient/{patient_id}" and not subject.endswith(f"/Patient/{patient_id}")


def select_and_validate(resources: Iterable[RawResource], patient_id: str, selector: Selector) -> Selection:
    """The resources the rules read, read (validated, repaired where unambiguous) and
    deduplicated by type and id; what could not be read, with its topics."""
    resources = list(resources)
    medications = _sent_medications(resources, selector)
    models: list[FHIRResourceModel] = []
    unread: list[Unread] = []
    left_out: dict[str, str] = {}
    for raw in _unique(resources, set()):
        kind = raw.data.get("resourceType")
        if not isinstance(kind, str) or not _is_fhir_type(kind):
            unread += _unread(raw, "its resourceType does not name a FHIR R4 resource type", selector, whole=True)
        elif kind in MODELS and selector.is_needed(raw.data, medications):
            if _is_other_patients(raw, patient_id):
                # Needed, so relevant, whatever it mentions: named, never read as this patient's.
                unread.append(
                    Unread(
                        raw.reference,
                        "it names another patient than the one in context: left out",
                        selector.mentions(raw.data),
                        foreign=True,
                    )
                )
                continue
            reading = read_once(MODELS[kind], raw.data)
            problems = "; ".join(reading.problems)
            if reading.model is None:
                # A medication record or an order is read for what it is, even when it mentions
                # nothing the rules know: an unreadable one is never "not isotretinoin".
                always = {MEDICATION: kind in MEDICATION_USE, ORDER: kind in ORDER_KINDS}
                unread += _unread(
                    raw,
                    f"it could not be read: {problems}",
                    selector,
                    frozenset(t for t, yes in always.items() if yes),
                    whole=True,
                )
                continue
            models.append(_named_as_sent(reading.model, raw))
            if reading.problems:
                left_out[raw.reference] = problems
                lost = selector.mentions(raw.data) - selector.mentions(reading.data)
                if lost:
                    unread.append(Unread(raw.reference, f"part of it could not be read: {problems}", lost))
    return Selection(models, tuple(unread), left_out)


def _named_as_sent(model: FHIRResourceModel, raw: RawResource) -> FHIRResourceModel:
    """The model, with the id the EHR sent even when it is not a valid FHIR id (the reading left
    it out): cards name the record, and a delete suggestion must name the draft, as the EHR knows
    it. model_copy does not validate the update, which is the point here."""
    sent = raw.data.get("id")
    if model.id is None and isinstance(sent, str) and sent:
        return model.model_copy(update={"id": sent[:64]})
    return model


def _unread(
    raw: RawResource, reason: str, selector: Selector, kinds: frozenset[str] = frozenset(), whole: bool = False
) -> list[Unread]:
    """The record as Unread when it mentions anything the rules read (or is of a kind that
    always counts); nothing otherwise."""
    topics = selector.mentions(raw.data) | kinds
    return [Unread(raw.reference, reason, topics, whole=whole)] if topics else []


def _unique(resources: Iterable[RawResource], seen: set[str]) -> Iterator[RawResource]:
    for raw in resources:
        if "id" in raw.data:
            reference = raw.reference
            if reference in seen:
                continue
            seen.add(reference)
        yield raw


USES = Uses.of(__name__, valuesets=TOPICS)  # the Selector's value sets
