"""Running it in production: the log line, metrics, readiness, graceful shutdown."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from scripts.postgres import free_port
from service.app import create_app
from service.observability import json_formatter
from service.settings import Settings
from tests.support.fhir import icepick_scar, isotretinoin_statement, searchset
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.prometheus import metric

PATIENT, TOKEN = "pat-SECRET-42", "tok-SECRET-99"


def our_log(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(json_formatter().format(r)) for r in caplog.records if r.name == "acne_scar_cds"]


def test_one_json_line_per_request_with_what_operators_need(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="acne_scar_cds")
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar()), headers={"X-Request-ID": "ehr-call-7"})
    assert response.headers["X-Request-ID"] == "ehr-call-7"
    (line,) = [entry for entry in our_log(caplog) if entry["event"] == "request"]
    assert line["request_id"] == "ehr-call-7"
    assert line["endpoint"] == "/cds-services/<service_id>"
    assert line["service_id"] == "acne-scar-treatment"
    assert line["hook_instance"] == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    assert (line["status"], line["cards"], line["fetched"]) == (200, 1, [])
    assert line["duration_ms"] >= 0 and line["level"] == "INFO" and "time" in line


def test_a_request_id_that_is_not_sane_is_replaced(client: FlaskClient) -> None:
    for sent in ("bad id with spaces", "x" * 200, "<script>"):
        response = client.get("/cds-services", headers={"X-Request-ID": sent})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_neither_token_nor_patient_id_reaches_the_log(
    client: FlaskClient, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Successful, fetched and failing calls alike leave no patient id and no token behind."""
    caplog.set_level("DEBUG", logger="acne_scar_cds")
    auth = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(
        searchset(isotretinoin_statement(pid=PATIENT))
    )
    good = hook_request(
        icepick_scar(pid=PATIENT),
        pid=PATIENT,
        omit=("medicationStatements",),
        fhirServer=httpserver.url_for("/fhir"),
        fhirAuthorization=auth,
    )
    assert client.post(SERVICE_URL, json=good, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    failing = dict(good, fhirServer="http://127.0.0.1:9/fhir")
    assert client.post(SERVICE_URL, json=failing).status_code == 412
    unreadable = hook_request(dict(icepick_scar(pid=PATIENT), onsetDateTime="soon"), pid=PATIENT)
    assert client.post(SERVICE_URL, json=unreadable).status_code == 200  # read, and said in the card
    refused = dict(unreadable, hookInstance=f"not-a-uuid-{PATIENT}")
    assert client.post(SERVICE_URL, json=refused).status_code == 400
    text = "\n".join(json.dumps(entry) for entry in our_log(caplog))
    assert text.count('"event": "request"') == 4
    assert PATIENT not in text and TOKEN not in text


def test_every_4xx_logs_its_error_code_and_reason(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """Operators see why (issue "sandbox end to end"): the request line of an error answer carries
    the body's `error` and `message`; for a refused request, the fields that failed."""
    caplog.set_level("INFO", logger="acne_scar_cds")
    bad = dict(hook_request(icepick_scar()), hookInstance="x")
    answers = [
        client.post(SERVICE_URL, json=bad),
        client.post("/cds-services/nope", json=bad),
        client.post(SERVICE_URL, data="{}", content_type="text/plain"),
        client.post(SERVICE_URL, json={k: v for k, v in hook_request().items() if k != "prefetch"}),
    ]
    lines = [e for e in our_log(caplog) if e.get("event") == "request"]
    assert [(line["status"], line["error"]) for line in lines] == [
        (400, "invalid-request"),
        (404, "unknown-service"),
        (415, "unsupported-media-type"),
        (412, "prefetch-unavailable"),
    ]
    for answer, line in zip(answers, lines, strict=True):
        assert line["reason"] == answer.get_json()["message"]
    assert "hookInstance" in lines[0]["reason"]


def test_metrics_after_a_hook_call(client: FlaskClient) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    client.post(SERVICE_URL, json=hook_request(icepick_scar(), isotretinoin_statement()))
    after = client.get("/metrics").get_data(as_text=True)
    labels = {"endpoint": "/cds-services/<service_id>", "service": "acne-scar-treatment", "status": "200"}
    assert metric(after, "cds_requests_total", **labels) == metric(before, "cds_requests_total", **labels) + 1
    for card in ("isotretinoin-recent", "treatment-plan-ice-pick"):
        assert (
            metric(after, "cds_cards_issued_total", card=card, mode="live")
            == metric(before, "cds_cards_issued_total", card=card, mode="live") + 1
        )
    assert 'cds_request_duration_seconds_bucket{endpoint="/cds-services/<service_id>"' in after


def test_fetch_and_jwt_rejection_metrics(client: FlaskClient, settings: Settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_data("nope", status=500)
    before = client.get("/metrics").get_data(as_text=True)
    body = hook_request(icepick_scar(), omit=("medicationStatements",), fhirServer=httpserver.url_for("/fhir"))
    assert client.post(SERVICE_URL, json=body).status_code == 412
    guarded = create_app(
        replace(
            settings,
            auth_mode="required",
            public_base_urls=("http://localhost",),
            auth_issuers='[{"iss": "https://ehr.example", "jwks_url": "http://127.0.0.1:9/j"}]',
        )
    )
    assert guarded.test_client().get("/cds-services").status_code == 401
    after = client.get("/metrics").get_data(as_text=True)
    failed = {"key": "medicationStatements", "outcome": "failed"}
    fetches = "cds_prefetch_fetches_total"
    assert metric(after, fetches, **failed) == metric(before, fetches, **failed) + 1
    assert (
        metric(after, "cds_jwt_rejections_total", reason="no-bearer-token")
        == metric(before, "cds_jwt_rejections_total", reason="no-bearer-token") + 1
    )


def test_readyz_checks_the_database(client: FlaskClient, settings: Settings) -> None:
    ready = client.get("/readyz").get_json()
    assert (ready["status"], ready["checks"]) == ("ready", {"database": "ok"})  # details: test_governance
    unreachable = f"postgresql+psycopg://cds@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    app = create_app(replace(settings, database_url=unreachable, migrate_on_start=False))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert {k: response.get_json()[k] for k in ("status", "checks")} == {
        "status": "unavailable",
        "checks": {"database": "unreachable"},
    }
    assert app.test_client().get("/healthz").status_code == 200  # alive, just not ready
