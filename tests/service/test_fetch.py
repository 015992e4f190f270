"""The fallback fetch (CDS Hooks 2.0.1 §Prefetch): what is missing is fetched from fhirServer;
what cannot be obtained is a 412 that names the key, the query and the reason.

The FHIR server here is pytest-httpserver: these are faults a real server cannot be made to
produce on demand (timeouts, 500s, garbage, endless paging). The happy path against a real FHIR
server is in test_integration_fhir.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.app import create_app
from service.observability import json_formatter
from service.settings import Settings, SettingsError
from tests.support.fhir import icepick_scar, isotretinoin_statement, searchset
from tests.support.hooks import SERVICE_URL, hook_request

AUTH = {
    "access_token": "t0ken-for-fhir",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "acne-scar-cds",
}


def call(
    client: FlaskClient,
    server: HTTPServer,
    *resources: dict[str, Any],
    omit: tuple[str, ...] = ("medicationStatements",),
) -> Any:
    body = hook_request(*resources, omit=omit, fhirServer=server.url_for("/fhir"), fhirAuthorization=AUTH)
    return client.post(SERVICE_URL, json=body)


def test_missing_key_is_fetched_with_the_bearer_token(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/fhir/MedicationStatement",
        query_string="patient=p1",
        headers={"Authorization": "Bearer t0ken-for-fhir"},
    ).respond_with_json(searchset(isotretinoin_statement()))
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 200
    assert any("2027-03-26" in c["summary"] for c in response.get_json()["cards"])


def test_next_links_are_followed(client: FlaskClient, httpserver: HTTPServer) -> None:
    page2 = httpserver.url_for("/fhir/MedicationStatement-page2")
    first = searchset()
    first["link"] = [{"relation": "next", "url": page2}]
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(first)
    httpserver.expect_request("/fhir/MedicationStatement-page2").respond_with_json(searchset(isotretinoin_statement()))
    response = call(client, httpserver, icepick_scar())
    assert any("2027-03-26" in c["summary"] for c in response.get_json()["cards"])


def test_prefetched_bundle_with_next_link_is_completed_from_the_server(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    """An EHR may prefetch only the first page; the rest must not be silently missing."""
    body = hook_request(icepick_scar(), fhirServer=httpserver.url_for("/fhir"), fhirAuthorization=AUTH)
    body["prefetch"]["medicationStatements"]["link"] = [
        {"relation": "next", "url": httpserver.url_for("/fhir/MedicationStatement-page2")}
    ]
    httpserver.expect_request("/fhir/MedicationStatement-page2").respond_with_json(searchset(isotretinoin_statement()))
    response = client.post(SERVICE_URL, json=body)
    assert any("2027-03-26" in c["summary"] for c in response.get_json()["cards"])


@pytest.fixture
def slow_server() -> Iterator[HTTPServer]:
    """A server of its own, threaded, so its sleeping handler holds up no other test."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_read_timeout_is_412_within_the_budget(client: FlaskClient, slow_server: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(2)
        return Response("{}", content_type="application/json")

    slow_server.expect_request("/fhir/MedicationStatement").respond_with_handler(slow)
    started = time.monotonic()
    response = call(client, slow_server, icepick_scar())
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    (missing,) = response.get_json()["missing"]
    assert missing["key"] == "medicationStatements"
    assert missing["reason"].startswith("no answer within")
    assert elapsed < 2.5  # read timeout 1.0 s in the test settings: never hangs on the server


def test_connection_refused_is_412(client: FlaskClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    body = hook_request(
        icepick_scar(), omit=("conditions",), fhirServer=f"http://127.0.0.1:{port}/fhir", fhirAuthorization=AUTH
    )
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "the FHIR server could not be reached"


@pytest.mark.parametrize("status", [401, 403])
def test_refused_access_is_412(client: FlaskClient, httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}, status=status
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == f"the FHIR server refused access (HTTP {status})"


def test_server_error_with_operation_outcome_is_412_with_its_diagnostics(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception", "diagnostics": "database is down"}],
        },
        status=500,
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "HTTP 500: OperationOutcome: database is down"


def test_operation_outcome_with_200_is_not_mistaken_for_data(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "too many results"}],
        }
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert "too many results" in response.get_json()["missing"][0]["reason"]


def test_non_json_body_is_412(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_data(
        "<html>Gateway</html>", status=502, content_type="text/html"
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "HTTP 502, and the body is not JSON"


def test_search_answered_with_a_non_bundle_is_412(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(isotretinoin_statement())
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "expected a Bundle, got 'MedicationStatement'"


def test_read_of_the_wrong_type_is_412(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json(searchset())
    response = call(client, httpserver, icepick_scar(), omit=("patient",))
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "expected a Patient, got 'Bundle'"


def test_patient_that_does_not_exist_is_not_an_error(client: FlaskClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, status=404
    )
    response = call(client, httpserver, icepick_scar(), omit=("patient",))
    assert response.status_code == 200


def test_next_link_that_loops_is_412_not_endless(client: FlaskClient, httpserver: HTTPServer) -> None:
    looping = searchset()
    looping["link"] = [{"relation": "next", "url": httpserver.url_for("/fhir/MedicationStatement")}]
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(looping)
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert "loop back" in response.get_json()["missing"][0]["reason"]


def test_endless_distinct_pages_are_capped(client: FlaskClient, httpserver: HTTPServer) -> None:
    def page(request: Request) -> Response:
        n = int(request.args.get("page", "0"))
        bundle = searchset()
        bundle["link"] = [{"relation": "next", "url": httpserver.url_for(f"/fhir/MedicationStatement?page={n + 1}")}]
        return Response(json.dumps(bundle), content_type="application/fhir+json")

    httpserver.expect_request("/fhir/MedicationStatement").respond_with_handler(page)
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "more than 20 pages of results"


def test_next_link_to_another_host_is_refused(client: FlaskClient, httpserver: HTTPServer) -> None:
    """The bearer token goes only to fhirServer, never to a host a Bundle names."""
    bundle = searchset()
    bundle["link"] = [{"relation": "next", "url": "http://198.51.100.7/steal"}]
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(bundle)
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "a paging link points outside the FHIR server"


def test_bundle_of_ten_thousand_entries_is_handled(client: FlaskClient, httpserver: HTTPServer) -> None:
    noise = [
        {
            "resourceType": "MedicationStatement",
            "id": f"m{i}",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"text": "amlodipine 5 mg tablet"},
        }
        for i in range(10_000)
    ]
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(
        searchset(*noise, isotretinoin_statement())
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 200
    assert any("2027-03-26" in c["summary"] for c in response.get_json()["cards"])


def test_an_unreadable_status_from_the_server_is_read_cautiously(client: FlaskClient, httpserver: HTTPServer) -> None:
    """A fetched isotretinoin statement whose status is no FHIR code: its status is unknown, its
    dates still count (GUIDELINE §1 v2), and the card says what could not be read."""
    broken = isotretinoin_statement()
    broken["status"] = 7
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(searchset(broken))
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 200
    warning = response.get_json()["cards"][0]
    assert "defer fully ablative laser and mechanical dermabrasion until 2027-03-26" in warning["summary"]
    assert "MedicationStatement/iso1" in warning["detail"] and "could not read status: not text" in warning["detail"]


def test_token_never_appears_in_the_log(
    client: FlaskClient, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(searchset(), status=500)
    call(client, httpserver, icepick_scar())
    ours = "\n".join(json_formatter().format(r) for r in caplog.records if r.name == "acne_scar_cds")
    assert '"status": 412' in ours
    assert "t0ken-for-fhir" not in ours
    assert "p1" not in ours


# ----- which FHIR servers may be fetched from (service/fhir_servers.py) ------------------------


def app_allowing(settings: Settings, *entries: str) -> FlaskClient:
    """The service with AUTH_MODE=off and FHIR_SERVERS_ALLOWED set to `entries`."""
    return create_app(replace(settings, fhir_servers_allowed=entries)).test_client()


def test_by_default_a_fhir_server_on_loopback_is_fetched_from(client: FlaskClient, httpserver: HTTPServer) -> None:
    """FHIR_SERVERS_ALLOWED defaults to loopback, so `make run` and the README flow work."""
    assert httpserver.url_for("/fhir").startswith("http://localhost:")
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(searchset())
    assert call(client, httpserver, icepick_scar()).status_code == 200
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    "fhir_server",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7:8080/fhir",
        "https://fhir.elsewhere.example/r4",
        "http://127.0.0.2/fhir",
        "http://0.0.0.0:8080/fhir",
    ],
)
def test_by_default_a_server_off_loopback_is_never_fetched_from(client: FlaskClient, fhir_server: str) -> None:
    """Server-side request forgery: with AUTH_MODE=off anyone may call, so by default the
    service fetches from this machine's loopback names only (cloud metadata, private networks,
    0.0.0.0 and other 127.x addresses are refused before any connection)."""
    body = hook_request(icepick_scar(), omit=("conditions",), fhirServer=fhir_server, fhirAuthorization=AUTH)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert response.get_json()["missing"] == [
        {
            "key": "conditions",
            "query": fhir_server.rstrip("/") + "/Condition?patient=p1",
            "reason": "fhirServer is not among the FHIR servers allowed by FHIR_SERVERS_ALLOWED; "
            "nothing was fetched from it",
        }
    ]


def test_an_unlisted_fhir_server_is_never_fetched_from(settings: Settings, httpserver: HTTPServer) -> None:
    """The server exists and answers, but is not listed: 412 naming the reason, and it sees no
    request (neither the fetch nor the token)."""
    client = app_allowing(settings, "https://fhir.hospital.example/r4")
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(searchset(isotretinoin_statement()))
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert "not among the FHIR servers allowed by FHIR_SERVERS_ALLOWED" in response.get_json()["missing"][0]["reason"]
    assert httpserver.log == []


def test_a_listed_fhir_server_is_matched_exactly(settings: Settings, httpserver: HTTPServer) -> None:
    base = httpserver.url_for("/fhir")
    client = app_allowing(settings, base.upper().replace("/FHIR", "/fhir") + "/")  # case of scheme and host, slash
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_json(searchset())
    assert call(client, httpserver, icepick_scar()).status_code == 200
    elsewhere = hook_request(icepick_scar(), omit=("medicationStatements",), fhirServer=base + "-other")
    assert client.post(SERVICE_URL, json=elsewhere).status_code == 412
    assert len(httpserver.log) == 1


def test_the_token_is_not_sent_over_http_to_a_server_allowed_over_https(
    settings: Settings, httpserver: HTTPServer
) -> None:
    https = httpserver.url_for("/fhir").replace("http://", "https://")
    response = call(app_allowing(settings, https), httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == (
        "fhirServer uses http:// where FHIR_SERVERS_ALLOWED allows only https://: the access token is never "
        "sent in clear text; nothing was fetched"
    )
    assert httpserver.log == []


def test_a_fhir_server_url_with_credentials_is_never_fetched_from(client: FlaskClient, httpserver: HTTPServer) -> None:
    server = httpserver.url_for("/fhir").replace("http://", "http://admin:secret@")
    body = hook_request(icepick_scar(), omit=("medicationStatements",), fhirServer=server, fhirAuthorization=AUTH)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == (
        "fhirServer is not a plain http(s) base URL (credentials, query or fragment); nothing was fetched"
    )
    assert httpserver.log == []


def test_a_complete_prefetch_with_an_unlisted_fhir_server_is_answered(
    settings: Settings, httpserver: HTTPServer
) -> None:
    """Nothing needs fetching, so nothing is fetched and nothing is refused."""
    client = app_allowing(settings, "https://fhir.hospital.example/r4")
    body = hook_request(icepick_scar(), fhirServer=httpserver.url_for("/fhir"), fhirAuthorization=AUTH)
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"]
    assert httpserver.log == []


def test_a_redirect_is_not_followed(client: FlaskClient, httpserver: HTTPServer, slow_server: HTTPServer) -> None:
    """The FHIR server cannot send the service (and its token) on to another host."""
    httpserver.expect_request("/fhir/MedicationStatement").respond_with_data(
        "", status=302, headers={"Location": slow_server.url_for("/steal")}
    )
    response = call(client, httpserver, icepick_scar())
    assert response.status_code == 412
    assert response.get_json()["missing"][0]["reason"] == "HTTP 302, and the body is not JSON"
    assert slow_server.log == []


def test_fhir_servers_allowed_is_checked_at_start() -> None:
    assert Settings.from_env({}).fhir_servers_allowed == ("loopback",)
    assert Settings.from_env({"FHIR_SERVERS_ALLOWED": "none"}).fhir_servers_allowed == ()
    assert Settings.from_env({"FHIR_SERVERS_ALLOWED": "loopback, https://fhir.example/r4"}).fhir_servers_allowed == (
        "loopback",
        "https://fhir.example/r4",
    )
    for bad in (
        "ftp://fhir.example",
        "fhir.example/r4",
        "https://fhir.example/r4?tenant=1",
        "https://u:p@fhir.example",
    ):
        with pytest.raises(SettingsError, match="FHIR_SERVERS_ALLOWED="):
            Settings.from_env({"FHIR_SERVERS_ALLOWED": bad})
