"""Orders: what a draft (or planned) ServiceRequest or MedicationRequest is, in the guideline's
terms. A procedure is recognised by the local acne-scar-procedure code, by CPT through the
shipped ConceptMap (dermabrasion 15780-15783, chemical peels 15788-15793), or by its text
(`content/procedure-text.yaml`); a medication by the value sets (isotretinoin, other oral
retinoids, topical retinoids, herpes antivirals).

A draft is read as it is being composed (GUIDELINE §1, v2): a medication not chosen yet is
nothing to check; one that cannot be identified, or a draft that could not be read in full, is
read the cautious way (what it mentions counts: a draft naming isotretinoin is an isotretinoin
order even if the rest of it cannot be read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cards.concepts import codings_of, reference_of, texts_of
from cards.dates import to_date
from cards.errors import ContentError
from cards.medications import concept_of, is_isotretinoin, is_topical_retinoid, is_unidentified, request_dates
from cards.procedures import Procedure
from cards.resources import Unread
from cards.terminology import CONTENT, Terminology
from cards.uses import PROCEDURE_SYSTEM, Uses

RETINOID_SETS = ("isotretinoin", "oral-retinoid", "retinoid-ingredient", "topical-retinoid-product")

CPT_MAP = "cpt-to-acne-scar-procedure"


@dataclass(frozen=True)
class ProcedureReader:
    """Recognises scar procedures in a ServiceRequest's code."""

    procedures: Mapping[str, Procedure]
    system: str
    cpt: Mapping[tuple[str, str], str]
    patterns: tuple[tuple[re.Pattern[str], str | None], ...]

    @classmethod
    def load(
        cls, terminology: Terminology, procedures: Mapping[str, Procedure], path: Path = CONTENT / "procedure-text.yaml"
    ) -> ProcedureReader:
        patterns = []
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            target = entry.get("procedure")
            if target is not None and target not in procedures:
                raise ContentError(f"{path.name}: unknown procedure {target!r}")
            try:
                patterns.append((re.compile(entry["pattern"], re.IGNORECASE), target))
            except (re.error, KeyError) as exc:
                raise ContentError(f"{path.name}: bad pattern {entry!r}: {exc}") from None
        cpt = terminology.conceptmaps[CPT_MAP]
        if unknown := set(cpt.values()) - procedures.keys():
            raise ContentError(f"{CPT_MAP}: unknown target procedures {unknown}")
        return cls(procedures, terminology.codesystem_url(PROCEDURE_SYSTEM), cpt, tuple(patterns))

    def read(self, concept: Any) -> Procedure | None:
        """The procedure a CodeableConcept names, or None."""
        for coding in codings_of(concept):
            if coding.system == self.system and coding.code in self.procedures:
                return self.procedures[coding.code]
            if (coding.system, coding.code) in self.cpt:
                return self.procedures[self.cpt[(coding.system, coding.code)]]
        text = " ".join(texts_of(concept))
        for pattern, target in self.patterns:
            if pattern.search(text):
                return self.procedures[target] if target else None
        return None


@dataclass(frozen=True)
class Order:
    """One order as the rules see it."""

    reference: str
    label: str
    procedure: Procedure | None = None
    isotretinoin: bool = False
    retinoid: bool = False
    antiviral: bool = False
    occurrence: date | None = None
    course_end: date | None = None  # a medication order's last planned dose, when its bounds say
    unidentified: bool = False  # a medication order whose medication cannot be identified
    unreadable: bool = False  # a draft of which nothing could be read: no rule could check it

    def __str__(self) -> str:
        return f"{self.reference}: {self.label}"


def read_order(
    resource: FHIRResourceModel, pool: Sequence[FHIRResourceModel], reader: ProcedureReader, terminology: Terminology
) -> Order | None:
    """A ServiceRequest or MedicationRequest as an Order; None for anything else."""
    reference = reference_of(resource)
    if isinstance(resource, ServiceRequest):
        procedure = reader.read(resource.code)
        texts = texts_of(resource.code)
        label = procedure.display if procedure else (texts[0] if texts else "procedure")
        return Order(reference, label, procedure=procedure, occurrence=_occurrence(resource))
    if isinstance(resource, MedicationRequest):
        concept = concept_of(resource, pool)
        if concept.absent:
            return Order(reference, "medication not chosen yet")
        isotretinoin = is_isotretinoin(concept, terminology)
        retinoid = (
            isotretinoin
            or is_topical_retinoid(concept, terminology)
            or any(terminology[name].matches(concept.codings, concept.texts) for name in RETINOID_SETS)
        )
        antiviral = terminology["hsv-antiviral"].matches(concept.codings, concept.texts)
        return Order(
            reference,
            concept.label,
            isotretinoin=isotretinoin,
            retinoid=retinoid,
            antiviral=antiviral,
            course_end=request_dates(resource)[0],
            unidentified=is_unidentified(concept, terminology),
        )
    return None


def with_unread(orders: Sequence[Order], unread: Sequence[Unread]) -> list[Order]:
    """The batch, with what drafts that could not be read (in full) mention: a draft naming
    isotretinoin is an isotretinoin order, whatever else of it could be read."""
    by_reference = {o.reference: o for o in orders}
    for u in unread:
        order = by_reference.get(u.reference) or Order(u.reference, "draft order that could not be read")
        by_reference[u.reference] = replace(
            order,
            label=f"{order.label} ({u.reason})",
            isotretinoin=order.isotretinoin or u.about("isotretinoin"),
            retinoid=order.retinoid or u.about(*RETINOID_SETS),
            antiviral=order.antiviral or u.about("hsv-antiviral"),
            unidentified=order.unidentified
            or (u.reference.startswith("MedicationRequest/") and not u.about(*RETINOID_SETS, "hsv-antiviral")),
            unreadable=order.unreadable or u.whole,
        )
    return list(by_reference.values())


def read_orders(
    resources: Iterable[FHIRResourceModel], reader: ProcedureReader, terminology: Terminology
) -> list[Order]:
    """Every ServiceRequest and MedicationRequest among `resources`, as Orders."""
    pool = list(resources)
    return [o for r in pool if (o := read_order(r, pool, reader, terminology)) is not None]


def _occurrence(request: ServiceRequest) -> date | None:
    if request.occurrenceDateTime is not None:
        return to_date(request.occurrenceDateTime, "earliest")
    if request.occurrencePeriod is not None and request.occurrencePeriod.start is not None:
        return to_date(request.occurrencePeriod.start, "earliest")
    return None


USES = Uses.of(
    __name__, valuesets=(*RETINOID_SETS, "hsv-antiviral"), codesystems=(PROCEDURE_SYSTEM,), conceptmaps=(CPT_MAP,)
)
