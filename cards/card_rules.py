"""The rules of a CDS Hooks 2.0.1 card (§Card Attributes), in one place.

The catalogue is checked against them at start-up (`cards.catalogue`: a summary that could reach
the limit stops the boot) and every card the service sends is checked against them before it
leaves (`card_problems`): fields, formats, FHIR validation of suggested resources, and the JSON
rule that optional fields are omitted, never null or empty.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from pydantic import ValidationError as PydanticError

SUMMARY_LIMIT = 140  # §Card Attributes: the summary is "<140 characters", so 139 at most
INDICATORS = ("info", "warning", "critical")
SELECTION_BEHAVIOURS = ("at-most-one", "any")


class CodingSchema(Schema):
    """CDS Hooks 2.0.1 §Coding: system and code required."""

    class Meta:
        unknown = RAISE

    system = fields.String(required=True, validate=validate.Length(min=1))
    code = fields.String(required=True, validate=validate.Length(min=1))
    display = fields.String(validate=validate.Length(min=1))


class OverrideReasonSchema(CodingSchema):
    display = fields.String(required=True, validate=validate.Length(min=1))


class SourceSchema(Schema):
    class Meta:
        unknown = RAISE

    label = fields.String(required=True, validate=validate.Length(min=1))
    url = fields.Url()
    icon = fields.Url()
    topic = fields.Nested(CodingSchema)


class ActionSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(["create", "update", "delete"]))
    description = fields.String(required=True, validate=validate.Length(min=1))
    resource = fields.Dict()
    resourceId = fields.String(validate=validate.Length(min=1))

    @validates_schema
    def _resource_matches_type(self, data: dict[str, Any], **_: Any) -> None:
        if data["type"] in ("create", "update"):
            if "resource" not in data:
                raise ValidationError("create and update actions need a resource.", "resource")
            problem = fhir_problem(data["resource"])
            if problem:
                raise ValidationError(problem, "resource")
        elif "resourceId" not in data:
            raise ValidationError("delete actions need a resourceId.", "resourceId")


class SuggestionSchema(Schema):
    class Meta:
        unknown = RAISE

    label = fields.String(required=True, validate=validate.Length(min=1))
    uuid = fields.UUID()
    isRecommended = fields.Boolean()
    actions = fields.List(fields.Nested(ActionSchema), validate=validate.Length(min=1))


class LinkSchema(Schema):
    class Meta:
        unknown = RAISE

    label = fields.String(required=True, validate=validate.Length(min=1))
    url = fields.Url(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["absolute", "smart"]))
    appContext = fields.String(validate=validate.Length(min=1))

    @validates_schema
    def _app_context_only_for_smart(self, data: dict[str, Any], **_: Any) -> None:
        if "appContext" in data and data["type"] != "smart":
            raise ValidationError("appContext is only for smart links.", "appContext")


class CardSchema(Schema):
    """CDS Hooks 2.0.1 §Card Attributes, checked on every card the service sends."""

    class Meta:
        unknown = RAISE

    uuid = fields.UUID(required=True)
    summary = fields.String(required=True, validate=validate.Length(min=1, max=SUMMARY_LIMIT - 1))
    detail = fields.String(validate=validate.Length(min=1))
    indicator = fields.String(required=True, validate=validate.OneOf(INDICATORS))
    source = fields.Nested(SourceSchema, required=True)
    suggestions = fields.List(fields.Nested(SuggestionSchema), validate=validate.Length(min=1))
    selectionBehavior = fields.String(validate=validate.OneOf(SELECTION_BEHAVIOURS))
    overrideReasons = fields.List(fields.Nested(OverrideReasonSchema), validate=validate.Length(min=1))
    links = fields.List(fields.Nested(LinkSchema), validate=validate.Length(min=1))

    @validates_schema
    def _selection(self, data: dict[str, Any], **_: Any) -> None:
        suggestions = data.get("suggestions", [])
        if suggestions and "selectionBehavior" not in data:
            raise ValidationError("selectionBehavior is required with suggestions.", "selectionBehavior")
        recommended = sum(1 for s in suggestions if s.get("isRecommended"))
        if data.get("selectionBehavior") == "at-most-one" and recommended > 1:
            raise ValidationError("at-most-one allows one recommended suggestion.", "suggestions")


def fhir_problem(resource: Any) -> str | None:
    """Why `resource` is not a valid FHIR R4 resource, or None when it is."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return "Not a FHIR resource."
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError):
        return f"Unknown resourceType {resource['resourceType']!r}."
    try:
        model.model_validate(resource)
    except PydanticError as exc:  # a ValueError too: caught apart from the unknown type above
        return f"Invalid {resource['resourceType']}: {exc.errors()[0]['msg']}"
    return None


def empty_fields(value: Any, path: str = "") -> list[str]:
    """Paths of null, "", [] or {} anywhere in a response (CDS Hooks: omit, never empty)."""
    return _empty_paths(value, path) if _has_empty(value) else []


def _has_empty(value: Any) -> bool:
    """`empty_fields` without the paths: the walk every card takes (paths only when one is found)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node is None or node == "" or node == [] or node == {}:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _empty_paths(value: Any, path: str) -> list[str]:
    if value is None or value == "" or value == [] or value == {}:
        return [path or "(root)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_paths(v, f"{path}[{i}]")]
    return []


CARD_SCHEMA = CardSchema()  # built once: building a schema costs as much as using it


def card_problems(card: dict[str, Any]) -> dict[str, Any] | None:
    """What breaks the card rules in `card` (schema errors, empty fields), or None."""
    errors = CARD_SCHEMA.validate(card)
    empty = empty_fields(card)
    return {"schema": errors, "empty": empty} if errors or empty else None
