"""A hook request as the service reads it (CDS Hooks 2.0.1 §HTTP Request): typed, once its
schema (service/schemas.py) has checked it, with a typed context per hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from cards.resources import RawResource


@dataclass(frozen=True)
class FhirAuthorization:
    """CDS Hooks §fhirAuthorization: the bearer token the service may use on fhirServer."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


@dataclass(frozen=True, kw_only=True)
class PatientViewContext:
    """patient-view 1.0: the user and the patient whose chart was opened."""

    user_id: str
    patient_id: str
    encounter_id: str | None = None
    draft_orders: tuple[RawResource, ...] = ()  # patient-view has none

    def tokens(self) -> dict[str, str]:
        """The context's fields by their CDS Hooks names, for prefetch tokens ({{context.patientId}})."""
        names = {"userId": self.user_id, "patientId": self.patient_id, "encounterId": self.encounter_id}
        return {name: value for name, value in names.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class OrderSignContext(PatientViewContext):
    """order-sign 1.0: the patient-view fields and the draft orders about to be signed."""

    draft_orders: tuple[RawResource, ...]


@dataclass(frozen=True, kw_only=True)
class OrderSelectContext(OrderSignContext):
    """order-select 1.0: as order-sign, and the references of the orders just selected."""

    selections: tuple[str, ...]


C = TypeVar("C", bound=PatientViewContext, covariant=True)


@dataclass(frozen=True)
class HookRequest(Generic[C]):
    """The body of POST /cds-services/{id}, for a service whose hook has the context `C`."""

    hook: str
    hook_instance: UUID
    context: C
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    prefetch: Mapping[str, Any] = field(default_factory=dict)
