"""The patient-view service over HTTP: discovery, cards, and every error a client can cause.

Each error test shows the status and the message a user (an EHR integrator with curl) sees.
"""

from __future__ import annotations

import json
from dataclasses import replace

from flask.testing import FlaskClient

from service.app import create_app
from service.settings import Settings
from tests.support.fhir import icepick_scar, isotretinoin_statement, patient
from tests.support.hooks import SERVICE_URL, hook_request


def test_discovery_lists_the_patient_view_service_with_its_prefetch(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    (service,) = [s for s in services if s["id"] == "acne-scar-treatment"]
    assert service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "MedicationStatement?patient={{context.patientId}}" in service["prefetch"].values()
    assert "66555-4" in service["prefetch"]["observations"]  # Fitzpatrick (GUIDELINE §2)


def test_patient_view_returns_plan_and_isotretinoin_warning(client: FlaskClient) -> None:
    """R1 + R3 end to end: 2 months after isotretinoin, the 6-month date is given and the
    severe-grade plan leaves laser punch-out out, saying why."""
    body = hook_request(icepick_scar(severity="severe"), isotretinoin_statement())
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    summaries = {c["indicator"]: c["summary"] for c in cards}
    assert "2027-03-26" in summaries["warning"]
    assert "TCA CROSS" in summaries["info"]
    plan = next(c for c in cards if c["indicator"] == "info")
    ordered = {
        s["actions"][0]["resource"]["code"]["coding"][0]["code"]
        for s in plan["suggestions"]
        if s["actions"][0]["resource"]["resourceType"] == "ServiceRequest"
    }
    assert {"tca-cross", "punch-excision", "punch-grafting"} <= ordered
    assert "laser-punch-out" not in ordered
    withheld = "Laser punch-out (focal fully ablative CO2 or Er:YAG laser): isotretinoin within the last 6 months"
    assert withheld in plan["detail"]


def test_patient_without_scarring_gets_an_empty_card_list(client: FlaskClient) -> None:
    response = client.post(SERVICE_URL, json=hook_request(isotretinoin_statement()))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_malformed_json_is_400_with_the_parser_message(client: FlaskClient) -> None:
    response = client.post(SERVICE_URL, data='{"hook": "patient-view",', content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid-request"
    assert body["message"].startswith("The body is not valid JSON")


def test_json_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    response = client.post(SERVICE_URL, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["message"] == "The body must be a JSON object."


def test_schema_violations_are_400_with_field_level_messages(client: FlaskClient) -> None:
    body = hook_request(icepick_scar())
    body["hookInstance"] = "not-a-uuid"
    body["hook"] = "order-sign"
    del body["context"]["patientId"]
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert errors["hookInstance"] == ["Not a valid UUID."]
    assert "patient-view" in errors["hook"][0]
    assert errors["context"]["patientId"] == ["Missing data for required field."]


def test_fhir_authorization_without_fhir_server_is_400(client: FlaskClient) -> None:
    auth = {
        "access_token": "secret-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(), fhirAuthorization=auth))
    assert response.status_code == 400
    assert response.get_json()["errors"]["fhirServer"] == ["fhirServer is required when fhirAuthorization is present."]


def test_patient_id_that_is_not_a_fhir_id_is_400(client: FlaskClient) -> None:
    body = hook_request(icepick_scar())
    body["context"]["patientId"] = "1&_include=*"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["errors"]["context"]["patientId"] == ["Must be a FHIR id."]


def test_patient_id_with_a_trailing_newline_is_400(client: FlaskClient) -> None:
    body = hook_request(icepick_scar())
    body["context"]["patientId"] = "p1\n"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["errors"]["context"]["patientId"] == ["Must be a FHIR id."]


def test_unknown_service_is_404(client: FlaskClient) -> None:
    response = client.post("/cds-services/no-such-service", json=hook_request(icepick_scar()))
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown-service"
    assert "GET /cds-services" in response.get_json()["message"]


def test_get_on_a_service_is_405_with_allow_header(client: FlaskClient) -> None:
    response = client.get(SERVICE_URL)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.get_json()["error"] == "method-not-allowed"


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post(SERVICE_URL, data=json.dumps(hook_request()), content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]


def test_fhir_json_content_type_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        SERVICE_URL, data=json.dumps(hook_request(icepick_scar())), content_type="application/fhir+json; charset=utf-8"
    )
    assert response.status_code == 200


def test_body_over_the_limit_is_413(settings: Settings) -> None:
    client = create_app(replace(settings, max_body_bytes=2000)).test_client()
    body = hook_request(icepick_scar())
    body["prefetch"]["patient"]["text"] = {"status": "generated", "div": "x" * 5000}
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "payload-too-large",
        "message": "The body is larger than the limit of 2000 bytes.",
    }


def test_an_unreadable_isotretinoin_end_date_is_a_warning_naming_the_record(client: FlaskClient) -> None:
    """GUIDELINE §1 (v2): unreadable is not absent, and an error is not an answer. An end date
    that cannot be read leaves the last dose unknown: the R3 card asks to confirm it, names the
    record and what could not be read, and the plan holds back what R3 defers."""
    bad = isotretinoin_statement()
    bad["effectivePeriod"]["end"] = "26/09/2026"
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(severity="severe"), bad))
    assert response.status_code == 200
    warning, plan = response.get_json()["cards"]
    assert warning["summary"].startswith("Isotretinoin on record with no last dose date: confirm it")
    assert "MedicationStatement/iso1" in warning["detail"]
    assert "could not read effectivePeriod.end: not a valid FHIR date or time" in warning["detail"]
    assert (
        "Laser punch-out (focal fully ablative CO2 or Er:YAG laser): isotretinoin within the last 6 months, "
        "or last dose unknown (R3)" in plan["detail"]
    )


def test_invalid_resource_the_rules_do_not_read_is_ignored(client: FlaskClient) -> None:
    """Select, then validate: an irrelevant broken resource does not block advice."""
    unrelated = {
        "resourceType": "Condition",
        "id": "htn",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
        "onsetDateTime": "yesterday",
    }
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(), unrelated))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_records_of_another_patient_are_left_out_and_said(client: FlaskClient) -> None:
    """Another patient's scar is never read as this patient's, nor dropped in silence: one
    warning names it (an integration fault the EHR team must hear of)."""
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(pid="someone-else")))
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Records naming another patient came with this chart and were left out")
    assert "- Condition/scar1: it names another patient than the one in context: left out" in card["detail"]
    assert "someone-else" not in json.dumps(card)  # the other patient is not named to this one's clinician


def test_prefetch_value_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    body = hook_request(icepick_scar())
    body["prefetch"]["conditions"] = "Condition?patient=p1"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    assert "prefetch.conditions" in response.get_json()["errors"]


def test_null_patient_read_means_it_does_not_exist(client: FlaskClient) -> None:
    """CDS Hooks §Prefetch: a failed read may be null; no fetch is attempted for it."""
    body = hook_request(icepick_scar())
    body["prefetch"]["patient"] = None
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_missing_prefetch_without_fhir_server_is_412_naming_the_keys(client: FlaskClient) -> None:
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(), omit=("observations",)))
    assert response.status_code == 412
    body = response.get_json()
    assert body["error"] == "prefetch-unavailable"
    assert [m["key"] for m in body["missing"]] == ["observations"]
    assert body["missing"][0]["reason"] == "not prefetched and no fhirServer to fetch it from"


def test_request_with_no_prefetch_at_all_is_412_not_a_crash(client: FlaskClient) -> None:
    body = hook_request()
    del body["prefetch"]
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert len(response.get_json()["missing"]) == 6


def test_cors_preflight_from_the_sandbox(client: FlaskClient) -> None:
    response = client.options(
        SERVICE_URL,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_origins_are_configurable(settings: Settings) -> None:
    client = create_app(replace(settings, cors_origins=("https://ehr.example",))).test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ehr.example"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not-found"


def test_patient_view_response_has_no_null_or_empty_fields(client: FlaskClient) -> None:
    """CDS Hooks JSON rule: optional fields without a value are omitted."""
    cards = client.post(SERVICE_URL, json=hook_request(icepick_scar(), patient())).get_json()["cards"]
    text = json.dumps(cards)
    assert "null" not in text and '""' not in text and "[]" not in text and "{}" not in text


def test_a_record_of_another_patient_without_a_scar_of_this_one_keeps_the_service_silent(client: FlaskClient) -> None:
    """GUIDELINE §1: no acne scarring, no cards; a foreign record that is no scar changes nothing."""
    other = {
        "resourceType": "Condition",
        "id": "preg",
        "subject": {"reference": "Patient/someone-else"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "77386006"}]},
    }
    response = client.post(SERVICE_URL, json=hook_request(other))
    assert response.status_code == 200 and response.get_json() == {"cards": []}
