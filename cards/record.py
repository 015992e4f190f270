"""The patient record: the facts of GUIDELINE.md §2, derived from validated FHIR resources.

Each fact keeps the evidence it came from ("MedicationStatement/ms1: isotretinoin, last dose
2026-09-01") so that every card can say which data made it fire. Records that are not facts are
ignored (§1): refuted or entered-in-error Conditions, MedicationStatements entered in error or
not taken, MedicationRequests entered in error, cancelled or draft.

GUIDELINE §1 (v2), unreadable is not absent: a record that could not be read (in full) arrives
as `Unread`, with the topics it mentions (cards.resources), and each fact reads it the cautious
way — a keloid history, active acne, acne scarring, herpes simplex, an isotretinoin course of
unknown last dose, a pregnancy status that is uncertain — its evidence saying what could not be
read. A medication that cannot be identified is kept as such (cards.medications).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest

from cards import medications
from cards.answers import pregnancy_answer, skin_type_answer
from cards.concepts import (
    Evidence,
    codings_of,
    condition_text,
    first_code,
    is_active_condition,
    is_fact_condition,
    texts_of,
)
from cards.dates import to_date
from cards.orders import Order, ProcedureReader, read_orders
from cards.resources import Selection, Unread
from cards.terminology import Terminology
from cards.uses import Uses

Morphology = Literal["ice-pick", "rolling", "boxcar", "hypertrophic", "macular"]
# Whole words only: "controlling" is not a rolling scar.
MORPHOLOGY_TEXT: dict[str, re.Pattern[str]] = {
    "ice-pick": re.compile(r"\b(ice[ -]?pick|pin[ -]?prick)\b", re.IGNORECASE),
    "rolling": re.compile(r"\brolling\b", re.IGNORECASE),
    "boxcar": re.compile(r"\bbox[ -]?car\b", re.IGNORECASE),
    "hypertrophic": re.compile(r"\bhypertrophic\b", re.IGNORECASE),
    "macular": re.compile(r"\bmacular\b", re.IGNORECASE),
}
ACNE_WORD = re.compile(r"\bacne\b", re.IGNORECASE)
# How long a pregnancy-status answer stays true: a positive one for a pregnancy's length, a
# negative one only briefly (GUIDELINE §1: never treat "not recorded" as "not present").
PREGNANT_FOR = timedelta(weeks=42)
NOT_PREGNANT_FOR = timedelta(days=30)
# Condition.severity -> Goodman & Baron grade (GUIDELINE §2; Goodman 2006).
SEVERITY_GRADE = {"255604002": 2, "6736007": 3, "24484000": 4}


@dataclass(frozen=True)
class Scarring:
    """Acne scarring: the Conditions, their morphologies, grade and onset."""

    evidence: tuple[Evidence, ...]
    condition_references: tuple[str, ...]
    morphologies: frozenset[str]
    grade: int | None
    grade_evidence: Evidence | None
    onset: date | None


@dataclass(frozen=True)
class SkinType:
    """A Fitzpatrick skin type (1-6) and where it was recorded."""

    value: int
    evidence: Evidence

    @property
    def roman(self) -> str:
        return ("I", "II", "III", "IV", "V", "VI")[self.value - 1]


@dataclass(frozen=True)
class Pregnancy:
    """Pregnancy status: pregnant, not-pregnant, uncertain (the record suggests a pregnancy it
    does not state: another chapter-O code, a record that could not be read) or unknown (not
    recorded; never assumed absent)."""

    status: Literal["pregnant", "not-pregnant", "uncertain", "unknown"]
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class PatientRecord:
    """Every fact the guideline's rules read about one patient."""

    patient_id: str
    birth_date: date | None = None
    gender: str | None = None
    scarring: Scarring | None = None
    active_acne: tuple[Evidence, ...] = ()
    isotretinoin: medications.IsotretinoinExposure = field(default_factory=medications.IsotretinoinExposure)
    topical_retinoids: tuple[Evidence, ...] = ()
    skin_type: SkinType | None = None
    pregnancy: Pregnancy = field(default_factory=lambda: Pregnancy("unknown"))
    keloid: tuple[Evidence, ...] = ()
    herpes_active: tuple[Evidence, ...] = ()
    herpes_history: tuple[Evidence, ...] = ()
    planned_procedures: tuple[Order, ...] = ()
    antivirals: tuple[Evidence, ...] = ()
    unidentified_medications: tuple[medications.Course, ...] = ()
    foreign: tuple[Evidence, ...] = ()  # records naming another patient: left out, and said
    unread: tuple[Unread, ...] = ()
    left_out: Mapping[str, str] = field(default_factory=dict)  # reference -> what was not read

    def unidentified_within(self, today: date) -> tuple[Evidence, ...]:
        """Medications that cannot be identified and could fall within 6 months of today (R3)."""
        return medications.recent(self.unidentified_medications, today)

    def annotated(self, evidence: Evidence) -> Evidence:
        """The evidence, saying what of its record could not be read (left out)."""
        problems = self.left_out.get(evidence.reference)
        if not problems or "could not be read" in evidence.text:
            return evidence
        return Evidence(evidence.reference, f"{evidence.text} (could not read {problems})")


def build_record(
    patient_id: str,
    selection: Selection,
    terminology: Terminology,
    today: date,
    reader: ProcedureReader,
) -> PatientRecord:
    """Derive the patient's facts as of `today` from the selected resources (`cards.resources`)."""
    resources, unread = selection.models, selection.unread
    conditions = [r for r in resources if isinstance(r, Condition) and is_fact_condition(r)]
    observations = [r for r in resources if isinstance(r, Observation) and _is_fact_obs(r)]
    patient = next((r for r in resources if isinstance(r, Patient)), None)
    birth = to_date(patient.birthDate, "earliest") if patient and patient.birthDate else None
    herpes = [c for c in conditions if terminology["herpes-simplex"].matches(codings_of(c.code), texts_of(c.code))]
    return PatientRecord(
        patient_id=patient_id,
        birth_date=birth,
        gender=patient.gender if patient else None,
        scarring=_scarring(conditions, observations, terminology, birth, unread),
        active_acne=tuple(_ev(c, "active acne") for c in _acne(conditions, terminology) if is_active_condition(c))
        + _cautious(unread, "acne", "check whether acne is active"),
        isotretinoin=medications.isotretinoin_exposure(resources, terminology, today, unread),
        topical_retinoids=medications.topical_retinoids(resources, terminology),
        skin_type=None if _unread(unread, "fitzpatrick-skin-type") else _skin_type(observations, terminology),
        pregnancy=_pregnancy(conditions, observations, terminology, today, unread),
        keloid=tuple(
            _ev(c, "keloid history")
            for c in conditions
            if terminology["keloid"].matches(codings_of(c.code), texts_of(c.code))
        )
        + _cautious(unread, "keloid", "treated as a keloid history"),
        herpes_active=tuple(_ev(c, "herpes simplex, active") for c in herpes if is_active_condition(c))
        + _cautious(unread, "herpes-simplex", "read as active: check for active lesions"),
        herpes_history=tuple(_ev(c, "herpes simplex, history") for c in herpes if not is_active_condition(c)),
        planned_procedures=tuple(
            o for o in read_orders(_planned(resources), reader, terminology) if o.procedure is not None
        ),
        antivirals=medications.antivirals(resources, terminology),
        unidentified_medications=medications.unidentified(resources, terminology, today, unread),
        foreign=foreign_records(unread),
        unread=unread,
        left_out=selection.left_out,
    )


def foreign_records(unread: Sequence[Unread]) -> tuple[Evidence, ...]:
    """Records that name another patient, as evidence for the card that says so."""
    return tuple(Evidence(u.reference, u.reason) for u in unread if u.foreign)


def _unread(unread: Sequence[Unread], *topics: str) -> list[Unread]:
    return [u for u in unread if u.about(*topics)]


def _cautious(unread: Sequence[Unread], topic: str, reading: str) -> tuple[Evidence, ...]:
    """Evidence for a fact read the cautious way from records that could not be read in full."""
    return tuple(Evidence(u.reference, f"{u.reason}; {reading}") for u in _unread(unread, topic))


def _planned(resources: Sequence[FHIRResourceModel]) -> list[FHIRResourceModel]:
    """Procedure orders already placed (active or on hold): what is planned for the patient."""
    return [r for r in resources if isinstance(r, ServiceRequest) and r.status in ("active", "on-hold")]


def _ev(resource: FHIRResourceModel, text: str) -> Evidence:
    label = condition_text(resource) if isinstance(resource, Condition) else None
    return Evidence(f"{resource.get_resource_type()}/{resource.id}", f"{label}, {text}" if label else text)


def _acne(conditions: Iterable[Condition], terminology: Terminology) -> list[Condition]:
    return [c for c in conditions if terminology["acne"].matches(codings_of(c.code), texts_of(c.code))]


def _scarring(
    conditions: list[Condition],
    observations: list[Observation],
    terminology: Terminology,
    birth: date | None,
    unread: Sequence[Unread] = (),
) -> Scarring | None:
    """Acne scarring present (GUIDELINE §2): an acne-specific scar code, or a non-specific scar
    code with acne in its text or an acne Condition on the record. L70.2 is not in either set.
    A record that mentions acne scarring but could not be read counts, of unrecorded type."""
    has_acne = bool(_acne(conditions, terminology)) or bool(_unread(unread, "acne"))
    scars = [
        c for c in conditions if _is_acne_scar(c, terminology, has_acne) and first_code(c.clinicalStatus) != "resolved"
    ]
    unread_scars = [u for u in unread if u.about("acne-scar") or (has_acne and u.about("skin-scar-unspecified"))]
    if not scars:
        if not unread_scars:
            return None
        evidence = tuple(Evidence(u.reference, f"{u.reason}; read as acne scarring") for u in unread_scars)
        return Scarring(evidence, tuple(u.reference for u in unread_scars), frozenset(), None, None, None)
    morphologies = frozenset(m for c in scars for m in _morphologies(c, terminology))
    grade, grade_ev = _grade(scars, observations, terminology)
    onsets = [d for c in scars if (d := _onset(c, birth)) is not None]
    evidence = tuple(Evidence(f"Condition/{c.id}", condition_text(c) or "acne scarring") for c in scars) + tuple(
        Evidence(u.reference, f"{u.reason}; read as acne scarring") for u in unread_scars
    )
    return Scarring(
        evidence=evidence,
        condition_references=tuple(f"Condition/{c.id}" for c in scars),
        morphologies=morphologies,
        grade=grade,
        grade_evidence=grade_ev,
        onset=min(onsets) if onsets else None,
    )


def _is_acne_scar(condition: Condition, terminology: Terminology, has_acne: bool) -> bool:
    codings = codings_of(condition.code)
    if terminology["acne-scar"].matches(codings):
        return True
    if not codings:  # a problem recorded in words only ("Ice pick acne scars, both cheeks")
        return any(terminology["acne-scar"].has_text(t) for t in texts_of(condition.code))
    if not terminology["skin-scar-unspecified"].matches(codings):
        return False
    return has_acne or any(ACNE_WORD.search(t) for t in _words(condition))


def _words(condition: Condition) -> list[str]:
    """What a Condition says in words (GUIDELINE §2: its text, every display, its notes)."""
    return texts_of(condition.code) + [n.text for n in condition.note or [] if n.text]


def _morphologies(condition: Condition, terminology: Terminology) -> set[str]:
    system = terminology.codesystem_url("acne-scar-morphology")
    found = {c.code for c in codings_of(condition.code) if c.system == system}
    text = " ".join(_words(condition))
    found |= {m for m, pattern in MORPHOLOGY_TEXT.items() if pattern.search(text)}
    return found & set(MORPHOLOGY_TEXT)


def _grade(
    scars: list[Condition], observations: list[Observation], terminology: Terminology
) -> tuple[int | None, Evidence | None]:
    """Goodman & Baron grade: the latest grade Observation, else the Condition's severity."""
    grade_obs = [
        (o, v)
        for o in observations
        if terminology["scar-grade"].matches(codings_of(o.code)) and (v := _grade_value(o)) is not None
    ]
    if grade_obs:  # the latest; on one day, the highest (ties go to the more cautious plan)
        obs, value = max(grade_obs, key=lambda ov: (_obs_date(ov[0]), ov[1]))
        return value, Evidence(f"Observation/{obs.id}", f"Goodman & Baron grade {value}")
    severities = [
        (SEVERITY_GRADE[c.code], scar, c)
        for scar in scars
        for c in codings_of(scar.severity)
        if c.code in SEVERITY_GRADE
    ]
    if severities:
        grade, scar, coding = max(severities, key=lambda gsc: gsc[0])
        return grade, Evidence(f"Condition/{scar.id}", f"severity {coding.display or coding.code} (grade {grade})")
    return None, None


def _grade_value(obs: Observation) -> int | None:
    if obs.valueInteger is not None and 1 <= obs.valueInteger <= 4:
        return int(obs.valueInteger)
    for coding in codings_of(obs.valueCodeableConcept):
        if coding.code in {"1", "2", "3", "4"}:
            return int(coding.code)
    return None


def _onset(condition: Condition, birth: date | None) -> date | None:
    if condition.onsetDateTime is not None:
        return to_date(condition.onsetDateTime, "latest")
    if condition.onsetPeriod is not None and condition.onsetPeriod.start is not None:
        return to_date(condition.onsetPeriod.start, "latest")
    if condition.onsetAge is not None and condition.onsetAge.value is not None and birth:
        return date(birth.year + int(condition.onsetAge.value), birth.month, min(birth.day, 28))
    return None


def _is_fact_obs(obs: Observation) -> bool:
    return obs.status not in ("entered-in-error", "cancelled", "preliminary", "registered")


def _obs_date(obs: Observation) -> date:
    when = obs.effectiveDateTime or (obs.effectivePeriod.end if obs.effectivePeriod else None)
    return to_date(when or obs.issued, "latest") or date.min


def _skin_type(observations: list[Observation], terminology: Terminology) -> SkinType | None:
    """The latest Fitzpatrick reading; on one day, the darkest (R4 is the cautious side). A
    latest reading that cannot be read is unknown: an older one may be wrong (no false
    reassurance), so the plan asks for it to be recorded."""
    fitz = [o for o in observations if terminology["fitzpatrick-skin-type"].matches(codings_of(o.code))]
    if not fitz:
        return None
    latest = max(_obs_date(o) for o in fitz)
    values = [(v, o) for o in fitz if _obs_date(o) == latest and (v := skin_type_answer(o)) is not None]
    if not values or len(values) < len([o for o in fitz if _obs_date(o) == latest]):
        return None
    value, obs = max(values, key=lambda vo: vo[0])
    text = f"Fitzpatrick skin type {('I', 'II', 'III', 'IV', 'V', 'VI')[value - 1]}"
    return SkinType(value, Evidence(f"Observation/{obs.id}", text))


def _pregnancy(
    conditions: list[Condition],
    observations: list[Observation],
    terminology: Terminology,
    today: date,
    unread: Sequence[Unread] = (),
) -> Pregnancy:
    """Pregnancy status (GUIDELINE §2, v2; R5). Pregnant: an active pregnancy Condition (SNOMED
    CT, or ICD-10-CM Z33.1, Z34.x, O09.x, Z3A.x but Z3A.00, or words only) or a recent positive
    status answer. Uncertain: another active chapter-O code, a pregnancy recorded in words as
    past or lost, a latest status answer that cannot be read, or a pregnancy record that could
    not be read at all. A recent explicit "not pregnant" answer outweighs a chapter-O code (an
    indirect sign), never a pregnancy Condition or an unreadable record."""
    active = [c for c in conditions if is_active_condition(c)]
    pregnant = [c for c in active if _says_pregnant(c, terminology) == "pregnant"]
    if pregnant:
        return Pregnancy(
            "pregnant", tuple(Evidence(f"Condition/{c.id}", _label(c, "pregnancy, active")) for c in pregnant)
        )
    status = _pregnancy_status(observations, terminology, today)
    if status.status == "pregnant":
        return status
    doubts = [
        Evidence(f"Condition/{c.id}", _label(c, "active: a pregnancy code; pregnancy status not stated"))
        for c in active
        if _says_pregnant(c, terminology) == "uncertain"
    ]
    unreadable = [
        Evidence(u.reference, f"{u.reason}; it mentions pregnancy")
        for u in _unread(unread, "pregnant", "pregnancy-uncertain", "pregnancy-status")
    ]
    if unreadable or status.status == "uncertain" or (doubts and status.status != "not-pregnant"):
        return Pregnancy("uncertain", (*status.evidence, *doubts, *unreadable))
    return status


def _label(condition: Condition, text: str) -> str:
    label = condition_text(condition)
    return f"{label}, {text}" if label else text


# Words that put a pregnancy written in words in the past (or out of doubt): "history of", "loss".
PAST_PREGNANCY = re.compile(
    r"\b(history|previous|prior|past|post[- ]?partum|loss|lost|miscarriage|terminat\w*)\b", re.IGNORECASE
)


def _says_pregnant(condition: Condition, terminology: Terminology) -> str | None:
    """ "pregnant", "uncertain" or None for one Condition. Codes first, then words ("not pregnant"
    is read before "pregnant", and a pregnancy in the past is only uncertain)."""
    codings = codings_of(condition.code)
    if terminology["pregnant"].matches(codings):
        return "pregnant"
    if terminology["pregnancy-uncertain"].matches(codings):
        return "uncertain"
    texts = texts_of(condition.code)
    if not any(terminology["pregnant"].has_text(t) for t in texts):
        return None
    if any(terminology["not-pregnant"].has_text(t) for t in texts):
        return None
    past = any(PAST_PREGNANCY.search(t) for t in texts)
    if codings:
        # A code the value sets do not hold, whose words say pregnancy (a SNOMED CT child of
        # 77386006 such as "Normal pregnancy"): uncertain, confirm it (§1). A code for a past
        # pregnancy ("Personal history of complications of pregnancy") says nothing of now.
        return None if past else "uncertain"
    return "uncertain" if past else "pregnant"  # in words only


def _pregnancy_status(observations: list[Observation], terminology: Terminology, today: date) -> Pregnancy:
    """The latest pregnancy-status answer (LOINC 82810-3) that says something, while it can still
    be true (42 weeks for "pregnant", 30 days for "not pregnant"); on one day, a positive answer
    before a negative one. A latest answer that cannot be read makes the status uncertain."""
    answers = [
        (o, a)
        for o in observations
        if terminology["pregnancy-status"].matches(codings_of(o.code))
        and (a := pregnancy_answer(o, terminology)) is not None
    ]
    for obs, answer in sorted(answers, reverse=True, key=lambda oa: (_obs_date(oa[0]), oa[1] == "pregnant")):
        when = _obs_date(obs)
        if answer == "unknown":
            break  # the latest answer says the status is not known: an older one no longer tells
        words = {"pregnant": "pregnant", "not-pregnant": "not pregnant", "unreadable": "an answer that cannot be read"}
        evidence = (Evidence(f"Observation/{obs.id}", f"pregnancy status: {words[answer]} on {when}"),)
        if answer == "unreadable":
            return Pregnancy("uncertain", evidence)
        if answer == "pregnant" and today - when <= PREGNANT_FOR:
            return Pregnancy("pregnant", evidence)
        if answer == "not-pregnant" and today - when <= NOT_PREGNANT_FOR:
            return Pregnancy("not-pregnant", evidence)
        break  # the latest answer is too old to rely on
    return Pregnancy("unknown")


USES = Uses.of(
    __name__,
    valuesets=(
        "herpes-simplex",
        "keloid",
        "acne",
        "acne-scar",
        "skin-scar-unspecified",
        "scar-grade",
        "fitzpatrick-skin-type",
        "pregnant",
        "pregnancy-uncertain",
        "not-pregnant",
        "pregnancy-status",
    ),
    codesystems=("acne-scar-morphology",),
)
