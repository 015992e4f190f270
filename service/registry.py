"""The CDS services this server offers, keyed by service id (never by hook: two services
may share a hook). Discovery is generated from this one table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from marshmallow import Schema

from cards.engine import Engine
from cards.render import RenderedCard
from cards.resources import RawResource
from service.errors import UnknownService
from service.hook_request import HookRequest, OrderSelectContext, OrderSignContext, PatientViewContext
from service.schemas import OrderSelectContextSchema, OrderSignContextSchema, PatientContextSchema

C = TypeVar("C", bound=PatientViewContext)
# What answers a service's calls: the engine, the typed request, the resources gathered, today.
Handler = Callable[[Engine, HookRequest[C], list[RawResource], date], list[RenderedCard]]
LOCAL = "https://acne-scar-cds.example/fhir/CodeSystem"


@dataclass(frozen=True)
class ServiceDescriptor(Generic[C]):
    """One CDS service: what discovery says about it, and what answers its calls (its context
    schema loads the hook's context `C`, which its handler reads)."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    handler: Handler[C]
    context_schema: type[Schema]
    usage_requirements: str | None = None

    def discovery(self) -> dict[str, Any]:
        """This service's entry in GET /cds-services (CDS Hooks 2.0.1 §Discovery)."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:  # CDS Hooks JSON rule: omit, never empty
            entry["prefetch"] = dict(self.prefetch)
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


@dataclass(frozen=True)
class Registry:
    """Service descriptors by id."""

    services: Mapping[str, ServiceDescriptor[Any]] = field(default_factory=dict)

    def get(self, service_id: str) -> ServiceDescriptor[Any]:
        try:
            return self.services[service_id]
        except KeyError:
            raise UnknownService(
                f"No CDS service with id {service_id!r}. GET /cds-services lists the services."
            ) from None

    def __iter__(self) -> Iterator[ServiceDescriptor[Any]]:
        return iter(self.services.values())


def patient_view(
    engine: Engine, request: HookRequest[PatientViewContext], resources: list[RawResource], today: date
) -> list[RenderedCard]:
    """patient-view: the guideline's cards for the patient whose chart was opened."""
    return engine.evaluate_resources(request.context.patient_id, resources, today)


# Prefetch: everything the guideline reads (GUIDELINE §2). Conditions are not filtered by
# code: the acne, scar, keloid, herpes and pregnancy value sets are replaceable data.
PATIENT_VIEW_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    "medicationDispenses": "MedicationDispense?patient={{context.patientId}}",
    "observations": (
        "Observation?patient={{context.patientId}}"
        "&code=http://loinc.org|66555-4,http://loinc.org|82810-3,"
        f"{LOCAL}/acne-scar-observation|goodman-baron-grade"
    ),
}

ACNE_SCAR_TREATMENT = ServiceDescriptor[PatientViewContext](
    id="acne-scar-treatment",
    hook="patient-view",
    title="Ice-pick acne scar treatment guidance",
    description=(
        "Evidence-based treatment plan for atrophic (ice-pick first) acne scars, with safety "
        "warnings: active acne, isotretinoin timing, skin of colour, pregnancy, keloids, herpes "
        "simplex. Silent for patients without acne scarring."
    ),
    prefetch=PATIENT_VIEW_PREFETCH,
    handler=patient_view,
    context_schema=PatientContextSchema,
)


def order_select(
    engine: Engine, request: HookRequest[OrderSelectContext], resources: list[RawResource], today: date
) -> list[RenderedCard]:
    """order-select: cards only about the orders just selected."""
    context = request.context
    return engine.evaluate_orders(
        context.patient_id, resources, context.draft_orders, today, selected=set(context.selections)
    )


def order_sign(
    engine: Engine, request: HookRequest[OrderSignContext], resources: list[RawResource], today: date
) -> list[RenderedCard]:
    """order-sign: cards about every draft order about to be signed."""
    return engine.evaluate_orders(request.context.patient_id, resources, request.context.draft_orders, today)


# What the order rules read: the patient-view data, plus procedures already ordered (R3: a
# procedure planned within 6 months of an isotretinoin order).
ORDER_PREFETCH = {
    **PATIENT_VIEW_PREFETCH,
    "serviceRequests": "ServiceRequest?patient={{context.patientId}}&status=active",
}
ORDER_DESCRIPTION = (
    "Checks draft orders for scar procedures (ablative laser, laser punch-out, dermabrasion, "
    "peels, TCA CROSS, punch techniques, ...) and retinoids against the ice-pick acne scar "
    "guideline: isotretinoin timing, pregnancy, skin of colour, keloids, herpes simplex. "
    "Safe orders get no card."
)

ACNE_SCAR_ORDER_SELECT = ServiceDescriptor[OrderSelectContext](
    id="acne-scar-order-select",
    hook="order-select",
    title="Acne scar procedure and retinoid order check (on selection)",
    description=ORDER_DESCRIPTION + " Cards are about the selected orders only.",
    prefetch=ORDER_PREFETCH,
    handler=order_select,
    context_schema=OrderSelectContextSchema,
)

ACNE_SCAR_ORDER_SIGN = ServiceDescriptor[OrderSignContext](
    id="acne-scar-order-sign",
    hook="order-sign",
    title="Acne scar procedure and retinoid order check (before signing)",
    description=ORDER_DESCRIPTION + " Cards are about every draft order.",
    prefetch=ORDER_PREFETCH,
    handler=order_sign,
    context_schema=OrderSignContextSchema,
)


def no_advice(
    engine: Engine, request: HookRequest[PatientViewContext], resources: list[RawResource], today: date
) -> list[RenderedCard]:
    """The benchmark's baseline: the whole request path (auth, JSON, schema), no guideline."""
    return []


BENCH_BASELINE = ServiceDescriptor[PatientViewContext](
    id="bench-baseline",
    hook="patient-view",
    title="Benchmark baseline (no advice)",
    description="Parses and validates a patient-view request and answers no cards. Only with BENCH_BASELINE=true.",
    prefetch={},
    handler=no_advice,
    context_schema=PatientContextSchema,
)


def default_registry(bench_baseline: bool = False) -> Registry:
    """The services this build offers (plus the benchmark baseline when asked)."""
    services: list[ServiceDescriptor[Any]] = [ACNE_SCAR_TREATMENT, ACNE_SCAR_ORDER_SELECT, ACNE_SCAR_ORDER_SIGN]
    if bench_baseline:
        services.append(BENCH_BASELINE)
    return Registry({s.id: s for s in services})
