"""The HTTP contract (openapi.yaml) against the service: what the spec says is what it does.

Each response is checked against the schema the spec declares for its path, method and status,
with the spec's components resolved by `referencing`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from jwt.algorithms import ECAlgorithm
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from service.app import create_app
from service.guard import OPEN_PATHS, OPEN_PREFIXES
from service.settings import Settings
from service.store import metadata
from tests.support.feedback import accepted, issue_cards, overridden
from tests.support.fhir import searchset
from tests.support.paths import FIXTURES, ROOT, load_json

SPEC_PATH = ROOT / "service" / "openapi.yaml"
SPEC_URI = "urn:acne-scar-cds:openapi"
SERVICE = "/cds-services/acne-scar-treatment"
HOOK_PATH = "/cds-services/{id}"
FEEDBACK = SERVICE + "/feedback"
FEEDBACK_PATH = "/cds-services/{id}/feedback"
REPORT = "/feedback-report"
WHEN = "2026-11-26T10:00:00Z"
MORPHOLOGY = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-morphology"
SEARCH_KEYS = ("medicationStatements", "medicationRequests", "medicationDispenses", "observations")
ORDER_SIGN = "/cds-services/acne-scar-order-sign"
ORDER_SELECT = "/cds-services/acne-scar-order-select"
ORDERS = FIXTURES / "orders"
SERVICES = {
    "acne-scar-treatment": "patient-view",
    "acne-scar-order-select": "order-select",
    "acne-scar-order-sign": "order-sign",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def pointer(*parts: str) -> str:
    """A JSON pointer fragment (RFC 6901) into the spec."""
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator(spec: dict[str, Any], ref: str) -> Draft202012Validator:
    """A validator for the schema at `ref` (a pointer into the spec), components resolved."""
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    return Draft202012Validator(
        {"$ref": SPEC_URI + ref}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def response_validator(
    spec: dict[str, Any], path: str, method: str, status: int, media: str = "application/json"
) -> Draft202012Validator:
    """The validator for the body the spec declares for this path, method and status."""
    response = spec["paths"][path][method]["responses"][str(status)]  # KeyError: undocumented
    where = ("paths", path, method, "responses", str(status))
    if "$ref" in response:
        where = tuple(response["$ref"].removeprefix("#/").split("/"))
        response = spec["components"]["responses"][where[-1]]
    assert media in response["content"], f"{status} is not documented as {media}"
    return validator(spec, pointer(*where, "content", media, "schema"))


def errors_of(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(instance)]


def patient_view(**prefetch: Any) -> dict[str, Any]:
    """A minimal patient-view request for Patient p1, with the given prefetch."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
    }
    if prefetch:
        body["prefetch"] = prefetch
    return body


def ice_pick_request(condition_subject: str = "Patient/p1") -> dict[str, Any]:
    """patient-view for Patient p1, ice-pick scars recorded (on `condition_subject`), every
    prefetch key filled."""
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": condition_subject},
        "code": {"coding": [{"system": MORPHOLOGY, "code": "ice-pick"}]},
    }
    return patient_view(
        patient={"resourceType": "Patient", "id": "p1"},
        conditions=searchset(condition),
        **{key: searchset() for key in SEARCH_KEYS},
    )


# ----- the document ------------------------------------------------------------------------


def test_spec_is_a_valid_openapi_31_document(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1.")


def test_service_serves_its_own_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.data) == spec


def test_repo_root_openapi_is_the_served_file() -> None:
    root = ROOT / "openapi.yaml"
    assert root.is_symlink()
    assert root.resolve() == SPEC_PATH


# Routes whose contract is still to be written (none today). Remove a route from here when its
# path is added to openapi.yaml; any other route missing from the spec fails.
NOT_YET_IN_CONTRACT: frozenset[str] = frozenset()


def test_every_route_of_the_app_is_in_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    routes = {
        rule.rule.replace("<service_id>", "{id}").replace("<path:path>", "{path}")
        for rule in client.application.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert routes - NOT_YET_IN_CONTRACT == set(spec["paths"])
    assert not NOT_YET_IN_CONTRACT & set(spec["paths"]), "documented now: drop it from the list"


# ----- discovery and a hook call -----------------------------------------------------------


def test_discovery_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.get_json()
    assert errors_of(response_validator(spec, "/cds-services", "get", 200), body) == []
    assert {s["id"]: s["hook"] for s in body["services"]} == SERVICES
    assert body == spec["components"]["examples"]["Discovery"]["value"], "the example is the real answer"


def test_health_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert errors_of(response_validator(spec, "/healthz", "get", 200), response.get_json()) == []


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
def test_patient_view_cards_follow_the_contract(client: FlaskClient, spec: dict[str, Any], content_type: str) -> None:
    request = ice_pick_request()
    request_schema = validator(spec, pointer("components", "schemas", "HookRequest"))
    assert errors_of(request_schema, request) == []

    response = client.post(SERVICE, json=request, content_type=content_type)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["cards"], "a patient with ice-pick scars gets a treatment plan"
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 200), body) == []


@pytest.mark.parametrize(
    "name, path",
    [("PatientViewRequest", SERVICE), ("OrderSignRequest", ORDER_SIGN), ("OrderSelectRequest", ORDER_SELECT)],
)
def test_the_contracts_example_request_is_answered_with_cards(
    client: FlaskClient, spec: dict[str, Any], name: str, path: str
) -> None:
    """Integrators and the fuzzer start from these examples: they must work as documented."""
    example = spec["components"]["examples"][name]["value"]
    response = client.post(path, json=example)
    assert response.status_code == 200
    assert response.get_json()["cards"]


def without_uuids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value


def test_the_order_sign_response_example_is_the_real_answer(client: FlaskClient, spec: dict[str, Any]) -> None:
    examples = spec["components"]["examples"]
    response = client.post(ORDER_SIGN, json=examples["OrderSignRequest"]["value"])
    assert without_uuids(response.get_json()) == without_uuids(examples["OrderSignResponse"]["value"])


def order_fixture(name: str) -> dict[str, Any]:
    return load_json(ORDERS / f"{name}.json")


@pytest.mark.parametrize("name", ["ablative-fitzpatrick-v", "retinoid-pregnant", "safe-orders-after-isotretinoin"])
def test_order_hook_cards_follow_the_contract(client: FlaskClient, spec: dict[str, Any], name: str) -> None:
    request = order_fixture(name)
    assert errors_of(validator(spec, pointer("components", "schemas", "HookRequest")), request) == []
    path = ORDER_SELECT if request["hook"] == "order-select" else ORDER_SIGN

    response = client.post(path, json=request)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 200), body) == []
    if not name.startswith("safe-"):
        types = {a["type"] for c in body["cards"] for s in c.get("suggestions", []) for a in s["actions"]}
        assert "delete" in types


@pytest.mark.parametrize(
    "change, field",
    [
        pytest.param(lambda r: r["context"].pop("selections"), "selections", id="order-select without selections"),
        pytest.param(lambda r: r["context"].update(selections=[]), "selections", id="empty selections"),
        pytest.param(
            lambda r: r["context"].update(draftOrders={"resourceType": "List"}),
            "draftOrders",
            id="draftOrders not a Bundle",
        ),
        pytest.param(
            lambda r: r["context"]["draftOrders"]["entry"][0]["resource"].pop("id"),
            "draftOrders",
            id="draft without id",
        ),
        pytest.param(lambda r: r["context"].pop("draftOrders"), "draftOrders", id="no draftOrders"),
    ],
)
def test_the_request_schema_refuses_what_the_order_services_refuse(
    client: FlaskClient, spec: dict[str, Any], change: Any, field: str
) -> None:
    """The contract's context shapes and the service agree, field by field."""
    request = copy.deepcopy(order_fixture("retinoid-pregnant"))
    request_schema = validator(spec, pointer("components", "schemas", "HookRequest"))
    assert errors_of(request_schema, request) == []
    change(request)
    assert errors_of(request_schema, request) != []
    response = client.post(ORDER_SELECT, json=request)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]["context"]


@pytest.mark.parametrize(
    "name, ref",
    [
        ("Discovery", ("paths", "/cds-services", "get", "responses", "200")),
        ("PatientViewRequest", ("components", "schemas", "HookRequest")),
        ("PatientViewResponse", ("paths", HOOK_PATH, "post", "responses", "200")),
        ("OrderSignRequest", ("components", "schemas", "HookRequest")),
        ("OrderSelectRequest", ("components", "schemas", "HookRequest")),
        ("OrderSignResponse", ("paths", HOOK_PATH, "post", "responses", "200")),
        ("FeedbackAccepted", ("components", "schemas", "FeedbackRequest")),
        ("FeedbackOverridden", ("components", "schemas", "FeedbackRequest")),
        ("FeedbackOverriddenNoReason", ("components", "schemas", "FeedbackRequest")),
        ("FeedbackReport", ("paths", REPORT, "get", "responses", "200")),
    ],
)
def test_the_contracts_examples_follow_its_schemas(spec: dict[str, Any], name: str, ref: tuple[str, ...]) -> None:
    if ref[0] == "paths":
        ref = (*ref, "content", "application/json", "schema")
    example = spec["components"]["examples"][name]["value"]
    assert errors_of(validator(spec, pointer(*ref)), example) == []


def contract_examples() -> list[tuple[str, tuple[str, ...], Any]]:
    """Every example in the contract, with the pointer parts of the schema it illustrates:
    request bodies, responses (inline or shared) and schema-level `examples`."""
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    named = spec["components"]["examples"]
    cases: list[tuple[str, tuple[str, ...], Any]] = []

    def content(where: tuple[str, ...], holder: dict[str, Any]) -> None:
        for media, obj in holder.get("content", {}).items():
            for name, example in obj.get("examples", {}).items():
                if "$ref" in example:
                    example = named[example["$ref"].rsplit("/", 1)[-1]]
                cases.append(
                    (f"{' '.join(where[1:])} {media} {name}", (*where, "content", media, "schema"), example["value"])
                )

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            content(("paths", path, method, "requestBody"), operation.get("requestBody", {}))
            for status, response in operation["responses"].items():
                content(("paths", path, method, "responses", status), response)
    for name, response in spec["components"]["responses"].items():
        content(("components", "responses", name), response)
    for name, schema in spec["components"]["schemas"].items():
        for n, example in enumerate(schema.get("examples", [])):
            cases.append((f"schema {name} {n}", ("components", "schemas", name), example))
    return cases


@pytest.mark.parametrize(
    "where, example", [pytest.param(ref, value, id=name) for name, ref, value in contract_examples()]
)
def test_every_example_follows_its_schema(spec: dict[str, Any], where: tuple[str, ...], example: Any) -> None:
    """Integrators copy the examples and fuzzers seed from them: each must be valid."""
    assert errors_of(validator(spec, pointer(*where)), example) == []


@pytest.mark.parametrize(
    "change, broken",
    [
        (lambda c: c.update(summary="x" * 140), "summary"),
        (lambda c: c.update(detail=None), "detail"),
        (lambda c: c.pop("selectionBehavior"), "selectionBehavior"),
        (lambda c: c.update(indicator="hint"), "indicator"),
        (lambda c: c["links"][0].update(appContext="x"), "links/0"),
        (lambda c: c.update(selectionBehavior="at-most-one", suggestions=[c["suggestions"][0]] * 2), "suggestions"),
    ],
)
def test_the_card_schema_rejects_what_cds_clients_reject(spec: dict[str, Any], change: Any, broken: str) -> None:
    """A card breaking a CDS Hooks rule fails the contract, so contract tests catch it."""
    card = spec["components"]["examples"]["PatientViewResponse"]["value"]["cards"][0]
    card = copy.deepcopy(card)
    change(card)
    card_schema = validator(spec, pointer("components", "schemas", "Card"))
    problems = errors_of(card_schema, card)
    assert any(broken in p for p in problems), f"broken {broken} not caught: {problems}"


# ----- errors ------------------------------------------------------------------------------

ERROR_CASES = {
    "malformed JSON": (lambda c: c.post(SERVICE, data="{", content_type="application/json"), 400, "invalid-request"),
    "breaks CDS Hooks": (
        lambda c: c.post(
            SERVICE, json={"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1"}}
        ),
        400,
        "invalid-request",
    ),
    "unknown service": (
        lambda c: c.post("/cds-services/no-such-service", json=ice_pick_request()),
        404,
        "unknown-service",
    ),
    "missing prefetch, no fhirServer": (lambda c: c.post(SERVICE, json=patient_view()), 412, "prefetch-unavailable"),
    "missing prefetch, a fhirServer not allowed": (
        lambda c: c.post(SERVICE, json={**patient_view(), "fhirServer": "https://fhir.elsewhere.example/r4"}),
        412,
        "prefetch-unavailable",
    ),
    "text/plain": (lambda c: c.post(SERVICE, data="{}", content_type="text/plain"), 415, "unsupported-media-type"),
    "order-select without selections": (
        lambda c: c.post(ORDER_SELECT, json=without(order_fixture("retinoid-pregnant"), "context", "selections")),
        400,
        "invalid-request",
    ),
    "order-sign without serviceRequests, no fhirServer": (
        lambda c: c.post(
            ORDER_SIGN, json=without(order_fixture("ablative-after-isotretinoin"), "prefetch", "serviceRequests")
        ),
        412,
        "prefetch-unavailable",
    ),
}


def without(request: dict[str, Any], part: str, key: str) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    del changed[part][key]
    return changed


def invalid_draft(request: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"] = "26/11/2026"
    return changed


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_answers_follow_the_contract(client: FlaskClient, spec: dict[str, Any], case: str) -> None:
    send, status, code = ERROR_CASES[case]
    response = send(client)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert errors_of(response_validator(spec, HOOK_PATH, "post", status), body) == []


def test_field_errors_name_the_fields(client: FlaskClient) -> None:
    response = client.post(
        SERVICE, json={"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1"}}
    )
    errors = response.get_json()["errors"]
    assert set(errors) == {"hookInstance", "context"}
    assert set(errors["context"]) == {"patientId"}


def test_412_names_every_missing_prefetch_key(client: FlaskClient) -> None:
    body = patient_view(patient={"resourceType": "Patient", "id": "p1"})
    missing = client.post(SERVICE, json=body).get_json()["missing"]
    assert {m["key"] for m in missing} == {"conditions", *SEARCH_KEYS}
    assert {
        "key": "conditions",
        "query": "Condition?patient=p1",
        "reason": "not prefetched and no fhirServer to fetch it from",
    } in missing


def test_405_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get(SERVICE)
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 405), response.get_json()) == []


def test_413_follows_the_contract(settings: Settings, spec: dict[str, Any]) -> None:
    small = create_app(dataclasses.replace(settings, max_body_bytes=1024)).test_client()
    body = ice_pick_request()
    body["padding"] = "x" * 2048
    response = small.post(SERVICE, json=body)
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload-too-large"
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 413), response.get_json()) == []


# ----- feedback (CDS Hooks §Feedback) ------------------------------------------------------


def feedback_request_errors(spec: dict[str, Any], body: Any) -> list[str]:
    return errors_of(validator(spec, pointer("components", "schemas", "FeedbackRequest")), body)


def test_feedback_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    cards = issue_cards(client)
    body = {
        "feedback": [
            accepted(cards["info"]),
            overridden(
                cards["warning"], cards["warning"]["overrideReasons"][0]["code"], comment="Discussed with the patient."
            ),
        ]
    }
    assert feedback_request_errors(spec, body) == []
    schema = response_validator(spec, FEEDBACK_PATH, "post", 200)

    first = client.post(FEEDBACK, json=body)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert errors_of(schema, first.get_json()) == []
    assert first.get_json() == {"stored": 2, "duplicates": 0}

    again = client.post(FEEDBACK, json=body, content_type="application/fhir+json")
    assert again.status_code == 200
    assert errors_of(schema, again.get_json()) == []
    assert again.get_json() == {"stored": 0, "duplicates": 2}, "a resend is stored once"


FEEDBACK_ERROR_CASES = {
    "malformed JSON": (
        lambda c, cards: c.post(FEEDBACK, data="{", content_type="application/json"),
        400,
        "invalid-request",
    ),
    "feedback not a list": (
        lambda c, cards: c.post(FEEDBACK, json={"feedback": {"card": cards["info"]["uuid"]}}),
        400,
        "invalid-request",
    ),
    "item fields": (
        lambda c, cards: c.post(
            FEEDBACK,
            json={"feedback": [overridden(cards["warning"]), dict(accepted(cards["info"]), acceptedSuggestions=[])]},
        ),
        400,
        "invalid-request",
    ),
    "unknown service": (
        lambda c, cards: c.post(
            "/cds-services/no-such-service/feedback", json={"feedback": [overridden(cards["warning"])]}
        ),
        404,
        "unknown-service",
    ),
    "GET": (lambda c, cards: c.get(FEEDBACK), 405, "method-not-allowed"),
    "text/plain": (
        lambda c, cards: c.post(FEEDBACK, data="{}", content_type="text/plain"),
        415,
        "unsupported-media-type",
    ),
    "card never issued": (
        lambda c, cards: c.post(
            FEEDBACK,
            json={"feedback": [overridden(dict(cards["warning"], uuid="0f0f0f0f-1111-4222-8333-444455556666"))]},
        ),
        422,
        "unknown-card",
    ),
    "suggestion of another card": (
        lambda c, cards: c.post(
            FEEDBACK,
            json={
                "feedback": [
                    dict(accepted(cards["info"]), acceptedSuggestions=[{"id": "9a9a9a9a-1111-4222-8333-444455556666"}])
                ]
            },
        ),
        422,
        "unknown-card",
    ),
    "override reason not offered": (
        lambda c, cards: c.post(
            FEEDBACK,
            json={"feedback": [overridden(cards["warning"], "made-up", comment="Discussed with the patient.")]},
        ),
        422,
        "unknown-card",
    ),
}


@pytest.mark.parametrize("case", list(FEEDBACK_ERROR_CASES))
def test_feedback_error_answers_follow_the_contract(client: FlaskClient, spec: dict[str, Any], case: str) -> None:
    send, status, code = FEEDBACK_ERROR_CASES[case]
    response = send(client, issue_cards(client))
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert errors_of(response_validator(spec, FEEDBACK_PATH, "post", status), body) == []


def test_feedback_field_errors_are_keyed_by_item_index(client: FlaskClient, spec: dict[str, Any]) -> None:
    cards = issue_cards(client)
    body = {
        "feedback": [
            overridden(cards["warning"]),
            {"card": cards["info"]["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN},
            dict(overridden(cards["warning"]), outcomeTimestamp="2026-11-26T10:00:00"),
        ]
    }
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    answer = response.get_json()
    assert errors_of(response_validator(spec, FEEDBACK_PATH, "post", 400), answer) == []
    assert answer["errors"] == {
        "feedback": {
            "1": {"acceptedSuggestions": ["Required when the outcome is accepted."]},
            "2": {"outcomeTimestamp": ["Must be a FHIR instant with a time zone (2026-11-26T10:00:00Z)."]},
        }
    }


def test_unknown_card_is_rejected_and_its_neighbours_stored(client: FlaskClient, spec: dict[str, Any]) -> None:
    cards = issue_cards(client)
    stranger = dict(cards["warning"], uuid="0f0f0f0f-1111-4222-8333-444455556666")
    response = client.post(FEEDBACK, json={"feedback": [overridden(cards["warning"]), overridden(stranger)]})
    assert response.status_code == 200
    schema = response_validator(spec, FEEDBACK_PATH, "post", 200)
    assert errors_of(schema, response.get_json()) == []
    assert [r["item"] for r in response.get_json()["rejected"]] == [1]
    report = client.get(REPORT).get_json()
    assert sum(c["overridden"] for c in report["cards"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: b.update(feedback=[]), id="no items"),
        pytest.param(lambda b: b["feedback"][0].pop("outcomeTimestamp"), id="no outcomeTimestamp"),
        pytest.param(lambda b: b["feedback"][0].update(outcome="ignored"), id="outcome ignored"),
        pytest.param(lambda b: b["feedback"][0].update(outcomeTimestamp="2026-11-26T10:00:00"), id="no time zone"),
        pytest.param(lambda b: b["feedback"][0].update(card="not-a-uuid"), id="card not a uuid"),
        pytest.param(lambda b: b["feedback"][0].pop("acceptedSuggestions"), id="accepted without suggestions"),
        pytest.param(lambda b: b["feedback"][0].update(acceptedSuggestions=[]), id="accepted, empty suggestions"),
        pytest.param(
            lambda b: b["feedback"][0].update(overrideReason={"userComment": "x"}), id="accepted with overrideReason"
        ),
        pytest.param(lambda b: b["feedback"][0].update(outcome="overridden"), id="overridden with acceptedSuggestions"),
        pytest.param(
            lambda b: b["feedback"][0].update(
                outcome="overridden", acceptedSuggestions=None, overrideReason={"userComment": "x" * 2001}
            ),
            id="userComment too long",
        ),
        pytest.param(
            lambda b: b["feedback"][0].update(
                outcome="overridden", acceptedSuggestions=None, overrideReason={"reason": {"system": "s"}}
            ),
            id="reason without code",
        ),
    ],
)
def test_the_feedback_schema_refuses_what_the_service_refuses(
    client: FlaskClient, spec: dict[str, Any], change: Any
) -> None:
    """The request schema and the service agree: what one refuses, the other refuses too."""
    body = {"feedback": [accepted(issue_cards(client)["info"])]}
    assert feedback_request_errors(spec, body) == []
    change(body)
    if body["feedback"]:
        body["feedback"][0] = {k: v for k, v in body["feedback"][0].items() if v is not None}
    assert feedback_request_errors(spec, body) != []
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)


def test_feedback_413_follows_the_contract(settings: Settings, spec: dict[str, Any]) -> None:
    small = create_app(dataclasses.replace(settings, max_body_bytes=1024)).test_client()
    response = small.post(FEEDBACK, json={"feedback": [], "padding": "x" * 2048})
    assert response.status_code == 413
    assert errors_of(response_validator(spec, FEEDBACK_PATH, "post", 413), response.get_json()) == []


def test_feedback_503_when_the_store_is_down(client: FlaskClient, spec: dict[str, Any]) -> None:
    cards = issue_cards(client)
    metadata.drop_all(client.application.extensions["cds_store"].engine)  # the database is gone
    response = client.post(FEEDBACK, json={"feedback": [overridden(cards["warning"])]})
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "store-unavailable"
    assert errors_of(response_validator(spec, FEEDBACK_PATH, "post", 503), body) == []


# ----- feedback report ---------------------------------------------------------------------


def test_the_report_is_503_when_the_store_is_down(client: FlaskClient, spec: dict[str, Any]) -> None:
    """As the contract says: the content owner may retry; never a 500."""
    metadata.drop_all(client.application.extensions["cds_store"].engine)
    response = client.get("/feedback-report")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "store-unavailable"
    assert errors_of(response_validator(spec, "/feedback-report", "get", 503), body) == []


@pytest.mark.parametrize("query", ["", "?service=acne-scar-treatment"])
def test_empty_feedback_report_follows_the_contract(client: FlaskClient, spec: dict[str, Any], query: str) -> None:
    response = client.get(REPORT + query)
    assert response.status_code == 200
    assert response.get_json() == {
        "cards": [],
        "suggestions": [],
        "calls": [],
        "firing": [],
        "acceptance_over_time": [],
    }
    assert errors_of(response_validator(spec, REPORT, "get", 200), response.get_json()) == []


def test_feedback_report_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    cards = issue_cards(client)
    schema = response_validator(spec, REPORT, "get", 200)
    client.post(
        FEEDBACK,
        json={
            "feedback": [overridden(cards["warning"], "procedure-not-planned", comment="Discussed with the patient.")]
        },
    )

    report = client.get(REPORT).get_json()
    assert errors_of(schema, report) == []
    by_card = {c["card"]: c for c in report["cards"]}
    assert by_card["isotretinoin-recent"]["acceptance_rate"] == 0.0
    assert by_card["isotretinoin-recent"]["top_override_reasons"] == [{"code": "procedure-not-planned", "count": 1}]
    assert by_card["treatment-plan-ice-pick"]["acceptance_rate"] is None, "nobody acted on it yet"
    assert report["suggestions"], "the plan's suggestions are listed as offered"

    client.post(FEEDBACK, json={"feedback": [accepted(cards["info"])]})
    narrowed = client.get(REPORT + "?service=acne-scar-treatment").get_json()
    assert errors_of(schema, narrowed) == []
    assert {c["card"]: c["acceptance_rate"] for c in narrowed["cards"]}["treatment-plan-ice-pick"] == 1.0
    assert any(s["accepted"] == 1 and s["take_rate"] == 1.0 for s in narrowed["suggestions"])


def test_feedback_report_for_an_unknown_service_is_404(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get(REPORT + "?service=no-such-service")
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown-service"
    assert errors_of(response_validator(spec, REPORT, "get", 404), response.get_json()) == []


# ----- trusting CDS clients: 401 (CDS Hooks §Trusting CDS Clients, AUTH_MODE=required) ------

ISSUER = "https://ehr.example"
EHR_KEY = ec.generate_private_key(ec.SECP384R1())
STRANGER_KEY = ec.generate_private_key(ec.SECP384R1())
OPERATIONS = [
    (path, method)
    for path, item in yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))["paths"].items()
    for method in item
    if method != "parameters"
]


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> FlaskClient:
    """The app with AUTH_MODE=required, trusting one EHR whose public key is in a JWKS file."""
    jwks = {"keys": [{**ECAlgorithm.to_jwk(EHR_KEY.public_key(), as_dict=True), "kid": "ehr-1", "use": "sig"}]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    issuers = json.dumps([{"iss": ISSUER, "jwks_file": str(tmp_path / "jwks.json")}])
    return create_app(
        dataclasses.replace(
            settings, auth_mode="required", auth_issuers=issuers, public_base_urls=("http://localhost",)
        )
    ).test_client()


def bearer(path: str, key: Any = EHR_KEY) -> dict[str, str]:
    """An ES384 JWT as a CDS client signs it, for the URL `path` of the test client."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "http://localhost" + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "ehr-1", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}"}


def test_the_contract_declares_bearer_jwt_security(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["cdsClientJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert spec["security"] == [{"cdsClientJwt": []}]


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_401_is_documented_exactly_where_the_guard_checks(spec: dict[str, Any], path: str, method: str) -> None:
    """Every operation but the open ones (service.guard OPEN_PATHS) and CORS preflights may
    answer 401; those are open (`security: []`) and never do."""
    operation = spec["paths"][path][method]
    checked = path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES) and method != "options"
    assert ("401" in operation["responses"]) is checked
    assert ("security" in operation and operation["security"] == []) is not checked


UNAUTHORISED_CALLS = {
    "discovery": ("get", "/cds-services", "/cds-services", None),
    "patient-view": ("post", SERVICE, HOOK_PATH, "PatientViewRequest"),
    "order-sign": ("post", ORDER_SIGN, HOOK_PATH, "OrderSignRequest"),
    "order-select": ("post", ORDER_SELECT, HOOK_PATH, "OrderSelectRequest"),
    "feedback": ("post", FEEDBACK, FEEDBACK_PATH, "FeedbackAccepted"),
    "feedback report": ("get", REPORT, REPORT, None),
}


@pytest.mark.parametrize("credentials", ["none", "not bearer", "untrusted key"])
@pytest.mark.parametrize("call", list(UNAUTHORISED_CALLS))
def test_401_follows_the_contract(secured: FlaskClient, spec: dict[str, Any], call: str, credentials: str) -> None:
    method, url, documented, example = UNAUTHORISED_CALLS[call]
    headers = {
        "none": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "untrusted key": bearer(url, STRANGER_KEY),
    }[credentials]
    body = spec["components"]["examples"][example]["value"] if example else None

    response = secured.open(url, method=method.upper(), json=body, headers=headers)

    assert response.status_code == 401, response.get_data(as_text=True)
    # RFC 6750 §3.1: no error code when the request carries no bearer token.
    challenge = 'Bearer error="invalid_token"' if credentials == "untrusted key" else "Bearer"
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.get_json() == {"error": "unauthorized", "message": "The request is not authorised."}
    assert errors_of(response_validator(spec, documented, method, 401), response.get_json()) == []


def test_a_signed_call_passes_and_open_paths_need_no_token(secured: FlaskClient, spec: dict[str, Any]) -> None:
    """The 401s above come from the checks, not from a service that refuses everyone."""
    example = spec["components"]["examples"]["OrderSignRequest"]["value"]
    signed = secured.post(ORDER_SIGN, json=example, headers=bearer(ORDER_SIGN))
    assert signed.status_code == 200, signed.get_data(as_text=True)
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 200), signed.get_json()) == []
    for path in sorted(OPEN_PATHS):
        assert secured.get(path).status_code in (200, 503), path
    assert (
        secured.options(
            ORDER_SIGN, headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"}
        ).status_code
        == 200
    )
