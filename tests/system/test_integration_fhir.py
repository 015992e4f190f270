"""The fallback fetch against a real FHIR R4 server (sekmet-fhir, in its own venv, on loopback).

The EHR sends no prefetch; the service fetches every key from fhirServer with the bearer
token, follows real paging links, and answers with the same cards as with full prefetch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from scripts.fhir_server import FhirServer, start
from tests.support.fhir import icepick_scar, isotretinoin_statement, patient
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.paths import FIXTURES

pytestmark = pytest.mark.integration
TOKEN = "integration-test-token"


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def other_problems(pid: str, count: int) -> list[dict[str, Any]]:
    """A long problem list, so that searches span several pages (the server pages by 20)."""
    return [
        {
            "resourceType": "Condition",
            "id": f"{pid}-problem-{i}",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensive disorder"}]
            },
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = start(0, Path(tmp_path_factory.mktemp("fhir")), TOKEN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def loaded(fhir_server: FhirServer) -> FhirServer:
    scar = icepick_scar(pid="int1", cid="int1-scar")
    fhir_server.load(collection(patient("int1"), scar, *other_problems("int1", 45), isotretinoin_statement(pid="int1")))
    return fhir_server


def no_prefetch(server: FhirServer, token: str = TOKEN) -> dict[str, Any]:
    auth = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "acne-scar-cds",
    }
    body = hook_request(pid="int1", fhirServer=server.base_url, fhirAuthorization=auth)
    del body["prefetch"]
    return body


def test_cards_from_a_real_fhir_server_without_prefetch(client: FlaskClient, loaded: FhirServer) -> None:
    response = client.post(SERVICE_URL, json=no_prefetch(loaded))
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    assert {c["indicator"] for c in cards} == {"warning", "info"}
    warning = next(c for c in cards if c["indicator"] == "warning")
    assert "2027-03-26" in warning["summary"]
    assert "MedicationStatement/iso1" in warning["detail"]


def test_same_cards_as_with_full_prefetch(client: FlaskClient, loaded: FhirServer) -> None:
    fetched = client.post(SERVICE_URL, json=no_prefetch(loaded)).get_json()["cards"]
    prefetched_body = hook_request(
        patient("int1"),
        icepick_scar(pid="int1", cid="int1-scar"),
        *other_problems("int1", 45),
        isotretinoin_statement(pid="int1"),
        pid="int1",
    )
    prefetched = client.post(SERVICE_URL, json=prefetched_body).get_json()["cards"]
    strip = lambda cards: sorted((c["summary"], c["detail"]) for c in cards)  # noqa: E731
    assert strip(fetched) == strip(prefetched)


def test_wrong_token_is_412_naming_the_refusal(client: FlaskClient, loaded: FhirServer) -> None:
    response = client.post(SERVICE_URL, json=no_prefetch(loaded, token="wrong"))
    assert response.status_code == 412
    reasons = {m["reason"] for m in response.get_json()["missing"]}
    assert reasons == {"the FHIR server refused access (HTTP 401)"}


def test_patient_unknown_to_the_server_gets_no_cards(client: FlaskClient, loaded: FhirServer) -> None:
    body = no_prefetch(loaded)
    body["context"]["patientId"] = "nobody"
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_a_medication_named_only_by_reference_is_read_from_the_fhir_server(
    client: FlaskClient, fhir_server: FhirServer
) -> None:
    """Guideline v2 §5 scenario 8, over a real FHIR server: the prescription and its fill name
    their Medication by reference only (no display), and the EHR did not prefetch it. The service
    reads Medication/{id} from fhirServer, so the records are isotretinoin (R3, last dose
    2026-09-25), not "a medication that could not be identified"."""
    fixtures = FIXTURES
    request = json.loads((fixtures / "requests" / "isotretinoin-medication-unavailable.json").read_text())
    reference = json.loads((fixtures / "patients" / "isotretinoin-medication-reference.json").read_text())
    [medication] = [e["resource"] for e in reference["entry"] if e["resource"]["resourceType"] == "Medication"]
    medication = dict(medication, id="isotretinoin-medication-unavailable-isotretinoin-40")
    fhir_server.load(collection(medication))
    request["fhirServer"] = fhir_server.base_url
    request["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "acne-scar-cds",
    }

    response = client.post(SERVICE_URL, json=request)

    assert response.status_code == 200, response.get_json()
    warning, _plan = response.get_json()["cards"]
    assert warning["summary"].startswith("Isotretinoin last dose 2026-09-25: defer fully ablative laser")
    assert "isotretinoin 40 MG Oral Capsule" in warning["detail"]
    assert "could not be identified" not in json.dumps(response.get_json())
