"""The HTTP contract (openapi.yaml) against the service: what the spec says is what it does.

Each response is checked against the schema the spec declares for its path, method and status,
with the spec's components resolved by `referencing`.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "service" / "openapi.yaml"
SPEC_URI = "urn:acne-scar-cds:openapi"
SERVICE = "/cds-services/acne-scar-treatment"
HOOK_PATH = "/cds-services/{id}"
MORPHOLOGY = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-morphology"
SEARCH_KEYS = ("medicationStatements", "medicationRequests", "medicationDispenses", "observations")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def pointer(*parts: str) -> str:
    """A JSON pointer fragment (RFC 6901) into the spec."""
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator(spec: dict[str, Any], ref: str) -> Draft202012Validator:
    """A validator for the schema at `ref` (a pointer into the spec), components resolved."""
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    return Draft202012Validator({"$ref": SPEC_URI + ref}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def response_validator(spec: dict[str, Any], path: str, method: str, status: int,
                       media: str = "application/json") -> Draft202012Validator:
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


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if resources:
        bundle["entry"] = [{"resource": r} for r in resources]
    return bundle


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


# Routes whose contract is still to be written (feedback is being built). Remove a route from
# here when its path is added to openapi.yaml; any other route missing from the spec fails.
NOT_YET_IN_CONTRACT = {"/cds-services/{id}/feedback", "/feedback-report"}


def test_every_route_of_the_app_is_in_the_contract(client: FlaskClient,
                                                    spec: dict[str, Any]) -> None:
    routes = {
        rule.rule.replace("<service_id>", "{id}")
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
    assert [s["id"] for s in body["services"]] == ["acne-scar-treatment"]


def test_health_follows_the_contract(client: FlaskClient, spec: dict[str, Any]) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert errors_of(response_validator(spec, "/healthz", "get", 200), response.get_json()) == []


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
def test_patient_view_cards_follow_the_contract(client: FlaskClient, spec: dict[str, Any],
                                                content_type: str) -> None:
    request = ice_pick_request()
    request_schema = validator(spec, pointer("components", "schemas", "HookRequest"))
    assert errors_of(request_schema, request) == []

    response = client.post(SERVICE, json=request, content_type=content_type)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["cards"], "a patient with ice-pick scars gets a treatment plan"
    assert errors_of(response_validator(spec, HOOK_PATH, "post", 200), body) == []


def test_the_contracts_example_request_is_answered_with_cards(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    """Integrators and the fuzzer start from this example: it must work as documented."""
    example = spec["components"]["examples"]["PatientViewRequest"]["value"]
    response = client.post(SERVICE, json=example)
    assert response.status_code == 200
    assert response.get_json()["cards"]


@pytest.mark.parametrize("name, ref", [
    ("Discovery", ("paths", "/cds-services", "get", "responses", "200")),
    ("PatientViewRequest", ("components", "schemas", "HookRequest")),
    ("PatientViewResponse", ("paths", HOOK_PATH, "post", "responses", "200")),
])
def test_the_contracts_examples_follow_its_schemas(spec: dict[str, Any], name: str,
                                                   ref: tuple[str, ...]) -> None:
    if ref[0] == "paths":
        ref = (*ref, "content", "application/json", "schema")
    example = spec["components"]["examples"][name]["value"]
    assert errors_of(validator(spec, pointer(*ref)), example) == []


@pytest.mark.parametrize("change, broken", [
    (lambda c: c.update(summary="x" * 140), "summary"),
    (lambda c: c.update(detail=None), "detail"),
    (lambda c: c.pop("selectionBehavior"), "selectionBehavior"),
    (lambda c: c.update(indicator="hint"), "indicator"),
    (lambda c: c["links"][0].update(appContext="x"), "links/0"),
    (lambda c: c.update(selectionBehavior="at-most-one",
                        suggestions=[c["suggestions"][0]] * 2), "suggestions"),
])
def test_the_card_schema_rejects_what_cds_clients_reject(spec: dict[str, Any], change: Any,
                                                         broken: str) -> None:
    """A card breaking a CDS Hooks rule fails the contract, so contract tests catch it."""
    card = spec["components"]["examples"]["PatientViewResponse"]["value"]["cards"][0]
    card = copy.deepcopy(card)
    change(card)
    card_schema = validator(spec, pointer("components", "schemas", "Card"))
    problems = errors_of(card_schema, card)
    assert any(broken in p for p in problems), f"broken {broken} not caught: {problems}"


# ----- errors ------------------------------------------------------------------------------

ERROR_CASES = {
    "malformed JSON": (
        lambda c: c.post(SERVICE, data="{", content_type="application/json"),
        400, "invalid-request"),
    "breaks CDS Hooks": (
        lambda c: c.post(SERVICE, json={"hook": "patient-view", "hookInstance": "x",
                                        "context": {"userId": "Practitioner/1"}}),
        400, "invalid-request"),
    "unknown service": (
        lambda c: c.post("/cds-services/no-such-service", json=ice_pick_request()),
        404, "unknown-service"),
    "missing prefetch, no fhirServer": (
        lambda c: c.post(SERVICE, json=patient_view()),
        412, "prefetch-unavailable"),
    "text/plain": (
        lambda c: c.post(SERVICE, data="{}", content_type="text/plain"),
        415, "unsupported-media-type"),
    "condition of another patient": (
        lambda c: c.post(SERVICE, json=ice_pick_request(condition_subject="Patient/p2")),
        422, "invalid-fhir-resource"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_answers_follow_the_contract(client: FlaskClient, spec: dict[str, Any],
                                           case: str) -> None:
    send, status, code = ERROR_CASES[case]
    response = send(client)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == code
    assert errors_of(response_validator(spec, HOOK_PATH, "post", status), body) == []


def test_field_errors_name_the_fields(client: FlaskClient) -> None:
    response = client.post(SERVICE, json={"hook": "patient-view", "hookInstance": "x",
                                          "context": {"userId": "Practitioner/1"}})
    errors = response.get_json()["errors"]
    assert set(errors) == {"hookInstance", "context"}
    assert set(errors["context"]) == {"patientId"}


def test_412_names_every_missing_prefetch_key(client: FlaskClient) -> None:
    body = patient_view(patient={"resourceType": "Patient", "id": "p1"})
    missing = client.post(SERVICE, json=body).get_json()["missing"]
    assert {m["key"] for m in missing} == {"conditions", *SEARCH_KEYS}
    assert {"key": "conditions", "query": "Condition?patient=p1",
            "reason": "not prefetched and no fhirServer to fetch it from"} in missing


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
