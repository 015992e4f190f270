"""Errors the clinical core raises; the service maps each to one HTTP status."""

from __future__ import annotations


class CardsError(Exception):
    """Base class of every error raised by the clinical core."""


class ContentError(CardsError):
    """The shipped content (catalogue, value sets, code systems) is broken: stop the boot."""


class InvalidResource(CardsError):
    """A FHIR resource that the rules need does not validate as FHIR R4.

    Dropping it would be false reassurance (an unreadable isotretinoin record is not the
    absence of isotretinoin), so the caller must answer with an error instead of cards.
    """

    def __init__(self, reference: str, problems: list[str], origin: str | None = None) -> None:
        self.reference = reference
        self.problems = problems
        self.origin = origin
        where = f" (from {origin})" if origin else ""
        super().__init__(f"{reference}{where} is not a valid FHIR R4 resource: {'; '.join(problems)}")


class WrongPatient(CardsError):
    """A resource that the rules would read belongs to a different patient than the context."""

    def __init__(self, reference: str, subject: str, patient_id: str) -> None:
        self.reference = reference
        self.subject = subject
        self.patient_id = patient_id
        super().__init__(
            f"{reference} belongs to {subject}, not to Patient/{patient_id} named in the context"
        )
