"""Medication facts: isotretinoin exposure and topical retinoid use (GUIDELINE §2).

Isotretinoin is read from MedicationStatement (what the product requires) and also from
MedicationRequest and MedicationDispense, because US Core EHRs record prescriptions, not
statements. The last dose date is the latest of: a statement's effective end, a dispense's
hand-over date plus days' supply, a request's dosage bounds. An active record, or an end date
in the future, is *current*; a record with no end date that is not clearly current is *unknown*
— never "no exposure".

GUIDELINE §1 (v2), unreadable is not absent: a medication is followed by reference (contained,
or a Medication sent alongside or fetched by the service); one that still cannot be identified (no
word, no code of the guideline's value sets) is kept as *unidentified*, never read as "not
isotretinoin", and a record that mentions isotretinoin but could not be read in full counts as a
course whose last dose is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal

from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement

from cards.concepts import Evidence, codings_of, reference_of, texts_of
from cards.dates import add_months, to_date
from cards.reading import DATA_ABSENT_REASON
from cards.resources import MEDICATION, MEDICATION_SETS, Unread, medication_key
from cards.terminology import Terminology
from cards.uses import Uses

Status = Literal["none", "current", "past", "unknown"]
MedicationUse = MedicationStatement | MedicationRequest | MedicationDispense

# GUIDELINE §1: records that are not facts. Draft requests count only as the order being
# checked in an order hook, never as a patient's history.
IGNORED_STATUS = {
    "MedicationStatement": {"entered-in-error", "not-taken"},
    "MedicationRequest": {"entered-in-error", "cancelled", "draft"},
    "MedicationDispense": {"entered-in-error", "cancelled", "declined", "preparation"},
}
ONGOING_STATUS = {"active", "on-hold", "intended", "in-progress"}
ENDED_STATUS = {"completed", "stopped"}
TOPICAL_ROUTE = "6064005"  # SNOMED CT: topical route
# Whole words: "temporal" is not oral.
ORAL_WORDS = re.compile(r"\b(oral|orally|capsules?|tablets?|by mouth|po)\b", re.IGNORECASE)
TOPICAL_WORDS = re.compile(r"\b(topical|cream|gel|lotion|foam|ointment|cutaneous|microsphere)\b", re.IGNORECASE)
# Retinoids marketed only as topical forms; tretinoin is not among them (oral tretinoin
# treats acute promyelocytic leukaemia and is never "retinoid maintenance").
TOPICAL_ONLY = re.compile(r"\b(adapalene|tazarotene|trifarotene|differin|tazorac|aklief)\b", re.IGNORECASE)
ISOTRETINOIN_WAIT_MONTHS = 6  # R3: Spring 2017; Waldman 2017
UNIT_MONTHS = {"mo": 1, "a": 12}
UNIT_DAYS = {"d": 1, "wk": 7}


@dataclass(frozen=True)
class Course:
    """What one isotretinoin record says: current, ended on a date, or unknown."""

    state: Literal["current", "past", "unknown"]
    last_dose: date | None
    started: date | None
    evidence: Evidence


@dataclass(frozen=True)
class IsotretinoinExposure:
    """The patient's isotretinoin exposure as of today, with the records it rests on.
    `last_dose` is the last dose for "past", the planned end (if known) for "current"."""

    status: Status = "none"
    last_dose: date | None = None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class MedicationConcept:
    """A medication's codings and texts, its dose form and route (resolved references).
    `absent`: the record names no medication at all (a draft whose medication is not chosen
    yet); `unresolved`: the Medication it points at was neither contained, sent nor fetched."""

    codings: list[Any]
    texts: list[str]
    form_texts: list[str]
    route_codes: list[str]
    absent: bool = False
    unresolved: str | None = None

    @property
    def label(self) -> str:
        if self.texts:
            return self.texts[0]
        if self.unresolved:
            return f"medication {self.unresolved} (not available to this service)"
        codes = ", ".join(f"{c.code}" for c in self.codings if c.code)
        return f"medication coded {codes}, no name given" if codes else "medication not named"


def concept_of(use: MedicationUse, pool: Sequence[FHIRResourceModel]) -> MedicationConcept:
    """The medication of a statement / request / dispense, following medicationReference to a
    contained Medication or one sent alongside (or fetched)."""
    concept = use.medicationCodeableConcept
    form = None
    texts: list[str] = []
    unresolved = None
    if concept is None and use.medicationReference is not None:
        reference = use.medicationReference.reference or ""
        med = _resolve(use, reference, pool)
        if med is not None:
            concept, form = med.code, med.form
        elif reference:
            unresolved = reference[:100]
        texts = [use.medicationReference.display] if use.medicationReference.display else []
    dosages = getattr(use, "dosage", None) or getattr(use, "dosageInstruction", None) or []
    routes = [c.code for d in dosages for c in codings_of(d.route)]
    route_texts = [t for d in dosages for t in texts_of(d.route)]
    return MedicationConcept(
        codings=codings_of(concept),
        texts=texts_of(concept) + texts,
        form_texts=texts_of(form) + route_texts,
        route_codes=[r for r in routes if r],
        absent=use.medicationReference is None and _only_absent(use.medicationCodeableConcept),
        unresolved=unresolved,
    )


def _only_absent(concept: Any) -> bool:
    """No concept, or one that only says its value is absent (cards.reading marks a missing
    required medication so)."""
    if concept is None:
        return True
    marks = [e.url for e in concept.extension or []]
    return not concept.coding and not concept.text and all(url == DATA_ABSENT_REASON for url in marks)


def _resolve(use: MedicationUse, reference: str, pool: Sequence[FHIRResourceModel]) -> Medication | None:
    if reference.startswith("#"):
        return next((c for c in use.contained or [] if isinstance(c, Medication) and c.id == reference[1:]), None)
    key = medication_key(reference)
    return next((m for m in pool if isinstance(m, Medication) and f"Medication/{m.id}" == key), None)


def is_unidentified(concept: MedicationConcept, terminology: Terminology) -> bool:
    """Nothing tells what this medication is: no word, and no code of the guideline's medication
    value sets (GUIDELINE §1: such a medication is never "not isotretinoin")."""
    if concept.texts:
        return False
    return not any(terminology[name].matches(concept.codings) for name in MEDICATION_SETS)


def _uses(resources: Sequence[FHIRResourceModel]) -> list[MedicationUse]:
    return [
        r
        for r in resources
        if isinstance(r, MedicationStatement | MedicationRequest | MedicationDispense)
        and r.status not in IGNORED_STATUS[r.get_resource_type()]
    ]


def is_isotretinoin(concept: MedicationConcept, terminology: Terminology) -> bool:
    return terminology["isotretinoin"].matches(concept.codings, concept.texts)


def isotretinoin_exposure(
    resources: Sequence[FHIRResourceModel],
    terminology: Terminology,
    today: date,
    unread: Sequence[Unread] = (),
) -> IsotretinoinExposure:
    """Combine every isotretinoin record into one exposure (GUIDELINE §2, R3). A record that
    mentions isotretinoin but could not be read in full is a course of unknown last dose."""
    courses = [
        _course(use, concept, today)
        for use in _uses(resources)
        if is_isotretinoin(concept := concept_of(use, resources), terminology)
    ]
    courses += [
        Course("unknown", None, None, Evidence(u.reference, f"mentions isotretinoin, but {u.reason}"))
        for u in unread
        if u.about("isotretinoin")
    ]
    current = [c for c in courses if c.state == "current"]
    if current:
        # The planned last dose is known only when every current course has an end date.
        ends = [c.last_dose for c in current if c.last_dose is not None]
        planned = max(ends) if len(ends) == len(current) else None
        return IsotretinoinExposure("current", planned, tuple(c.evidence for c in current))
    past = sorted((c for c in courses if c.state == "past"), key=lambda c: c.last_dose or date.min)
    latest = past[-1] if past else None
    # GUIDELINE §2: no end date and not clearly current is unknown, whatever other records say:
    # an open-ended course may have gone on after every dated one.
    open_ended = [c for c in courses if c.state == "unknown"]
    if open_ended:
        evidence = tuple(c.evidence for c in open_ended) + ((latest.evidence,) if latest else ())
        return IsotretinoinExposure("unknown", None, evidence)
    if latest:
        return IsotretinoinExposure("past", latest.last_dose, (latest.evidence,))
    return IsotretinoinExposure()


def unidentified(
    resources: Sequence[FHIRResourceModel], terminology: Terminology, today: date, unread: Sequence[Unread] = ()
) -> tuple[Course, ...]:
    """Medication records whose medication cannot be identified, as courses: for all the service
    can tell, each could be isotretinoin (GUIDELINE §1). `recent` says which matter to R3. A
    medication record that could not be read at all, and mentions no medication the rules know,
    is one too, of unknown dates."""
    found = [
        Course("unknown", None, None, Evidence(u.reference, f"could not be identified: {u.reason}"))
        for u in unread
        if u.about(MEDICATION) and not u.about(*MEDICATION_SETS)
    ]
    for use in _uses(resources):
        concept = concept_of(use, resources)
        if is_unidentified(concept, terminology):
            course = _course(use, concept, today)
            found.append(
                replace(
                    course,
                    evidence=Evidence(course.evidence.reference, f"could not be identified: {course.evidence.text}"),
                )
            )
    return tuple(found)


def recent(courses: Sequence[Course], today: date) -> tuple[Evidence, ...]:
    """The courses that could fall within the 6 months before today (R3): current, last dose
    unknown, or ended since."""
    # As for isotretinoin itself (R3): within while today is before last dose + 6 months.
    return tuple(
        c.evidence
        for c in courses
        if c.state != "past" or c.last_dose is None or today < add_months(c.last_dose, ISOTRETINOIN_WAIT_MONTHS)
    )


def _course(use: MedicationUse, concept: MedicationConcept, today: date) -> Course:
    end, started = _dates(use)
    status = use.status or "unknown"
    reference = reference_of(use)
    if status in ONGOING_STATUS or (end is not None and end > today):
        return Course("current", end, started, Evidence(reference, f"{concept.label}, {status} (current)"))
    if end is not None:
        text = f"{concept.label}, {status}, last dose {end.isoformat()}"
        return Course("past", end, started, Evidence(reference, text))
    return Course("unknown", None, started, Evidence(reference, f"{concept.label}, {status}, no end date recorded"))


def _dates(use: MedicationUse) -> tuple[date | None, date | None]:
    """(last dose, start) of one record; None where the record does not say."""
    if isinstance(use, MedicationStatement):
        period = use.effectivePeriod
        start = to_date(period.start, "earliest") if period and period.start else None
        if period and period.end:
            return to_date(period.end, "latest"), start
        if use.effectiveDateTime is not None:
            day = to_date(use.effectiveDateTime, "latest")
            return (day if use.status in ENDED_STATUS else None), day
        return None, start
    if isinstance(use, MedicationDispense):
        handed = to_date(use.whenHandedOver, "latest") if use.whenHandedOver else None
        supply = use.daysSupply
        if handed and supply is not None and supply.value is not None:
            return handed + timedelta(days=int(supply.value)), handed
        return None, handed
    return request_dates(use)


def request_dates(request: MedicationRequest) -> tuple[date | None, date | None]:
    """(last dose, authored) of a prescription, from its dosage bounds."""
    authored = to_date(request.authoredOn, "earliest") if request.authoredOn else None
    # A duration counts from the latest day the prescription can have been written ("2026-04":
    # the 30th), so that a partial date never shortens a safety window.
    authored_latest = to_date(request.authoredOn, "latest") if request.authoredOn else None
    ends: list[date] = []
    for dosage in request.dosageInstruction or []:
        repeat = dosage.timing.repeat if dosage.timing else None
        if repeat is None:
            continue
        if repeat.boundsPeriod and repeat.boundsPeriod.end:
            if (end := to_date(repeat.boundsPeriod.end, "latest")) is not None:
                ends.append(end)
        elif repeat.boundsDuration and authored_latest and repeat.boundsDuration.value is not None:
            ends.append(_after(authored_latest, repeat.boundsDuration))
    return (max(ends) if ends else None), authored


def _after(start: date, duration: Any) -> date:
    value, unit = int(duration.value), (duration.code or duration.unit or "d")
    if unit in UNIT_MONTHS:
        return add_months(start, value * UNIT_MONTHS[unit])
    return start + timedelta(days=value * UNIT_DAYS.get(unit, 1))


def is_topical_retinoid(concept: MedicationConcept, terminology: Terminology) -> bool:
    """Topical forms only (GUIDELINE §2): a topical product code, or a retinoid ingredient
    whose form, route or text says topical and nothing says oral."""
    words = " ".join(concept.texts + concept.form_texts)
    if ORAL_WORDS.search(words):
        return False
    if terminology["topical-retinoid-product"].matches(concept.codings):
        return True
    if not terminology["retinoid-ingredient"].matches(concept.codings, concept.texts):
        return False
    topical_route = TOPICAL_ROUTE in concept.route_codes
    return topical_route or bool(TOPICAL_WORDS.search(words) or TOPICAL_ONLY.search(words))


def topical_retinoids(resources: Sequence[FHIRResourceModel], terminology: Terminology) -> tuple[Evidence, ...]:
    """Topical retinoids in use now: active (or on-hold, intended) statements and requests."""
    found = []
    for use in _uses(resources):
        if isinstance(use, MedicationDispense) or use.status not in ONGOING_STATUS:
            continue
        concept = concept_of(use, resources)
        if is_topical_retinoid(concept, terminology):
            found.append(Evidence(reference_of(use), f"{concept.label}, {use.status}"))
    return tuple(found)


def antivirals(resources: Sequence[FHIRResourceModel], terminology: Terminology) -> tuple[Evidence, ...]:
    """Herpes antivirals in use or prescribed now (R7: prophylaxis already arranged)."""
    found = []
    for use in _uses(resources):
        if isinstance(use, MedicationDispense) or use.status not in ONGOING_STATUS:
            continue
        concept = concept_of(use, resources)
        if terminology["hsv-antiviral"].matches(concept.codings, concept.texts):
            found.append(Evidence(reference_of(use), f"{concept.label}, {use.status}"))
    return tuple(found)


USES = Uses.of(
    __name__,
    valuesets=("isotretinoin", "topical-retinoid-product", "retinoid-ingredient", "hsv-antiviral", *MEDICATION_SETS),
)
