"""Small readers over validated FHIR models: codings, texts, statuses, evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel

from cards.terminology import Coding

# GUIDELINE §1: records that are not facts.
NOT_FACT_VERIFICATION = {"refuted", "entered-in-error"}
ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}


@dataclass(frozen=True)
class Evidence:
    """One resource and what the rules read from it, for the card's "Based on" list."""

    reference: str
    text: str

    def __str__(self) -> str:
        return f"{self.reference}: {self.text}"


def reference_of(resource: FHIRResourceModel) -> str:
    """ "Type/id" of a resource."""
    return f"{resource.get_resource_type()}/{resource.id}"


def codings_of(concept: Any) -> list[Coding]:
    """The codings of a (validated) CodeableConcept, or [] when it is absent."""
    if concept is None:
        return []
    return [Coding(c.system or "", c.code or "", c.display) for c in concept.coding or []]


def texts_of(concept: Any) -> list[str]:
    """The text and every coding display of a CodeableConcept."""
    if concept is None:
        return []
    return [t for t in [concept.text, *(c.display for c in concept.coding or [])] if t]


def first_code(concept: Any) -> str | None:
    """The code of a status-like CodeableConcept (clinicalStatus, verificationStatus)."""
    codings = codings_of(concept)
    return codings[0].code if codings else None


def is_fact_condition(condition: Condition) -> bool:
    """False for refuted and entered-in-error Conditions (GUIDELINE §1)."""
    return first_code(condition.verificationStatus) not in NOT_FACT_VERIFICATION


def is_active_condition(condition: Condition) -> bool:
    """clinicalStatus active, recurrence or relapse. An absent status with no abatement is
    active too: a Condition with no status is asserted, not resolved."""
    status = first_code(condition.clinicalStatus)
    if status is None:
        return condition.abatementDateTime is None and condition.abatementPeriod is None
    return status in ACTIVE_CLINICAL


def condition_text(condition: Condition) -> str | None:
    """The best human label of a Condition: its text, else its first coding display."""
    texts = texts_of(condition.code)
    return texts[0] if texts else None
