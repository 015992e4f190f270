"""marshmallow schemas for the CDS Hooks 2.0.1 envelopes that come in: hook requests (loaded
into the dataclasses of service/hook_request.py), feedback.

Unknown top-level fields are tolerated (CDS Hooks allows `extension`), required fields and
formats are enforced. The cards that go out are checked against the card rules of
`cards.card_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from cards.resources import RawResource
from service.errors import BadRequest
from service.hook_request import (
    FhirAuthorization,
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)


def load(schema: Schema, body: Mapping[str, Any], what: str) -> Any:
    """`body` loaded by `schema`; its refusal is a 400 naming the fields (BadRequest.from_fields)."""
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise BadRequest.from_fields(what, exc.messages) from None


# \Z, not $: `$` would let a trailing newline through re.match.
FHIR_ID = r"^[A-Za-z0-9\-\.]{1,64}\Z"
USER_REFERENCE = r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-\.]{1,64}\Z"


class FhirAuthorizationSchema(Schema):
    """CDS Hooks §fhirAuthorization: an OAuth 2.0 bearer token for fhirServer."""

    class Meta:
        unknown = EXCLUDE

    # RFC 6750 b64token: anything else cannot be sent in an Authorization header.
    access_token = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9\-._~+/]+=*\Z", error="Must be a bearer token (RFC 6750 characters)."),
    )
    token_type = fields.String(required=True, validate=validate.Equal("Bearer"))
    expires_in = fields.Integer(required=True, strict=True)
    scope = fields.String(required=True)
    subject = fields.String(required=True)
    patient = fields.String(validate=validate.Regexp(FHIR_ID))

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> FhirAuthorization:
        return FhirAuthorization(**data)


class PatientContextSchema(Schema):
    """patient-view 1.0 context: userId, patientId, optional encounterId."""

    class Meta:
        unknown = EXCLUDE

    userId = fields.String(
        required=True,
        validate=validate.Regexp(
            USER_REFERENCE, error="Must be a Practitioner, PractitionerRole, Patient or RelatedPerson reference."
        ),
    )
    patientId = fields.String(required=True, validate=validate.Regexp(FHIR_ID, error="Must be a FHIR id."))
    encounterId = fields.String(validate=validate.Regexp(FHIR_ID, error="Must be a FHIR id."))

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> PatientViewContext:
        return self.typed(data)

    def typed(self, data: dict[str, Any]) -> PatientViewContext:
        """The checked context as its hook's dataclass."""
        return PatientViewContext(**self.patient_fields(data))

    @staticmethod
    def patient_fields(data: dict[str, Any]) -> dict[str, Any]:
        return {"user_id": data["userId"], "patient_id": data["patientId"], "encounter_id": data.get("encounterId")}


class DraftOrdersSchema(Schema):
    """context.draftOrders: a FHIR Bundle of the draft orders (order-select / order-sign 1.0)."""

    class Meta:
        unknown = EXCLUDE

    resourceType = fields.String(required=True, validate=validate.Equal("Bundle", error="Must be a Bundle."))
    entry = fields.List(fields.Dict(), load_default=list)

    @validates("entry")
    def _entries_hold_resources_with_ids(self, entries: list[dict[str, Any]], **_: Any) -> None:
        for n, entry in enumerate(entries):
            resource = entry.get("resource")
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise ValidationError(f"entry[{n}] has no resource.")
            if not isinstance(resource.get("id"), str) or not resource["id"]:
                raise ValidationError(f"entry[{n}].resource needs an id (cards refer to the draft by it).")


class OrderSignContextSchema(PatientContextSchema):
    """order-sign 1.0 context: userId, patientId, optional encounterId, draftOrders."""

    draftOrders = fields.Nested(DraftOrdersSchema, required=True)

    def typed(self, data: dict[str, Any]) -> OrderSignContext:
        return OrderSignContext(**self.patient_fields(data), draft_orders=draft_resources(data["draftOrders"]))


def draft_resources(bundle: dict[str, Any]) -> tuple[RawResource, ...]:
    """The draft orders of a checked draftOrders Bundle, as raw resources for the engine."""
    return tuple(RawResource(e["resource"], "context.draftOrders") for e in bundle["entry"])


class OrderSelectContextSchema(OrderSignContextSchema):
    """order-select 1.0 context: as order-sign, plus the `selections` just made."""

    selections = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^[A-Za-z]+/[A-Za-z0-9\-\.]{1,64}\Z", error="Must be a reference such as MedicationRequest/1."
            )
        ),
        required=True,
        validate=validate.Length(min=1),
    )

    @validates_schema(skip_on_field_errors=True)
    def _selections_are_drafts(self, data: dict[str, Any], **_: Any) -> None:
        """A selection that is not among the drafts would go unchecked: silence would look like
        "this order is safe" (GUIDELINE §1)."""
        drafts = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["draftOrders"]["entry"]}
        unknown = [s for s in data["selections"] if s not in drafts]
        if unknown:
            raise ValidationError(f"{unknown[0]} is not among context.draftOrders.", "selections")

    def typed(self, data: dict[str, Any]) -> OrderSelectContext:
        return OrderSelectContext(
            **self.patient_fields(data),
            draft_orders=draft_resources(data["draftOrders"]),
            selections=tuple(data["selections"]),
        )


class ContextField(fields.Dict):
    """`context`: a JSON object, loaded by the called service's context schema into its typed
    context; what it refuses is keyed by the context's fields (context.patientId)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        mapping = super()._deserialize(value, attr, data, **kwargs)
        assert isinstance(self.parent, HookRequestSchema)
        return self.parent.context_schema.load(mapping)


class HookRequestSchema(Schema):
    """The body of POST /cds-services/{id} (CDS Hooks 2.0.1 §HTTP Request)."""

    class Meta:
        unknown = EXCLUDE

    hook = fields.String(required=True)
    hookInstance = fields.UUID(required=True)
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema)
    context = ContextField(required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))

    def __init__(self, hook: str, context_schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected_hook = hook
        self.context_schema = context_schema()  # built once: building a schema costs as much as using it

    @validates("hook")
    def _hook_matches_service(self, value: str, **_: Any) -> None:
        if value != self.expected_hook:
            raise ValidationError(f"This service answers the {self.expected_hook!r} hook, not {value[:80]!r}.")

    @validates_schema
    def _authorization_needs_server(self, data: dict[str, Any], **_: Any) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("fhirServer is required when fhirAuthorization is present.", "fhirServer")

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> HookRequest[Any]:
        return HookRequest(
            data["hook"],
            data["hookInstance"],
            data["context"],
            data.get("fhirServer"),
            data.get("fhirAuthorization"),
            data.get("prefetch") or {},
        )


class ReceivedCodingSchema(Schema):
    """A Coding from a client: tolerant of extra fields and of a missing system (then the
    card's override-reason system is assumed)."""

    class Meta:
        unknown = EXCLUDE

    system = fields.String(validate=validate.Length(min=1))
    code = fields.String(required=True, validate=validate.Length(min=1))
    display = fields.String()


class OverrideReasonInSchema(Schema):
    """CDS Hooks 2.0.1 §Overridden guidance: the reason chosen, and/or a comment."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.Nested(ReceivedCodingSchema)
    userComment = fields.String(validate=validate.Length(max=2000))


class AcceptedSuggestionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.UUID(required=True)


class FeedbackItemSchema(Schema):
    """One item of POST {service}/feedback (CDS Hooks 2.0.1 §Feedback)."""

    class Meta:
        unknown = EXCLUDE

    card = fields.UUID(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema))
    overrideReason = fields.Nested(OverrideReasonInSchema)
    outcomeTimestamp = fields.AwareDateTime(
        required=True,
        format="iso",
        error_messages={"invalid_awareness": "Must be a FHIR instant with a time zone (2026-11-26T10:00:00Z)."},
    )

    @validates("outcomeTimestamp")
    def _representable_in_utc(self, value: Any, **_: Any) -> None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Must be a time between years 1 and 9999 in UTC.") from None

    @validates_schema
    def _outcome_fields(self, data: dict[str, Any], **_: Any) -> None:
        if data["outcome"] == "accepted":
            if not data.get("acceptedSuggestions"):
                raise ValidationError("Required when the outcome is accepted.", "acceptedSuggestions")
            if "overrideReason" in data:
                raise ValidationError("Only for overridden outcomes.", "overrideReason")
        elif "acceptedSuggestions" in data:
            raise ValidationError("Only for accepted outcomes.", "acceptedSuggestions")


class FeedbackSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    feedback = fields.List(fields.Nested(FeedbackItemSchema), required=True, validate=validate.Length(min=1, max=1000))
