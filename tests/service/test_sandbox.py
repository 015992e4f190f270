"""What the real CDS Hooks sandbox sends, replayed (tests/sandbox/, captured in a browser).

The sandbox shows any 4xx as "No recommendations to display — All clear!" (CDS Hooks sandbox,
observed), so each of its requests must be answered 200 with the cards a clinician needs:
GUIDELINE §1 (v2, docs/clinical-specification.md), an error is not an answer. Rx View calls
order-select as soon as it opens, with a draft that has no medication and no `intent`; after a
medication is chosen its `category` is one object, not a list, and `draftOrders` has no `type`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from tests.support.paths import SANDBOX

ORDER = {"order-select": "/cds-services/acne-scar-order-select", "order-sign": "/cds-services/acne-scar-order-sign"}
DRAFT = "MedicationRequest/request-123"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ISOTRETINOIN_20MG = {"system": RXNORM, "code": "197844", "display": "Isotretinoin 20 MG Oral Capsule"}
CRITICAL = "Retinoid ordered for a patient recorded as pregnant: remove the order unless pregnancy is ruled out"


def captured(name: str) -> dict[str, Any]:
    return json.loads((SANDBOX / f"{name}.json").read_text(encoding="utf-8"))


def cards_for(client: FlaskClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(ORDER[request["hook"]], json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def the_draft(request: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = request["context"]["draftOrders"]["entry"][0]["resource"]
    return resource


def assert_critical_with_removal(cards: list[dict[str, Any]]) -> None:
    """The one card Rx View and Rx Sign must show: critical, naming the draft, one click to remove it."""
    [card] = cards
    assert (card["indicator"], card["summary"]) == ("critical", CRITICAL)
    assert f"- {DRAFT}: draft order: " in card["detail"]
    assert "Condition/pregnant-on-isotretinoin-pregnancy" in card["detail"]
    [removal] = [s for s in card["suggestions"] if s["actions"][0]["type"] == "delete"]
    assert removal["actions"] == [
        {"type": "delete", "description": f"Remove the draft order {DRAFT}", "resourceId": DRAFT}
    ]
    assert removal["isRecommended"] is True


@pytest.mark.parametrize("name", ["order-select-isotretinoin-chosen", "order-sign-isotretinoin"])
def test_rx_view_and_rx_sign_show_the_critical_card(client: FlaskClient, name: str) -> None:
    """Isotretinoin ordered for a pregnant patient, exactly as the sandbox sent it (a single-object
    `category`, a `draftOrders` Bundle without `type`): critical, never 422."""
    request = captured(name)
    assert isinstance(the_draft(request)["category"], dict) and "type" not in request["context"]["draftOrders"]
    assert_critical_with_removal(cards_for(client, request))


def test_rx_view_just_opened_says_nothing_about_a_medication_not_chosen(client: FlaskClient) -> None:
    """A draft still being composed (no medication, no intent) is normal: 200, and no card."""
    request = captured("order-select-on-open")
    assert {"intent", "medicationCodeableConcept", "medicationReference"}.isdisjoint(the_draft(request))
    assert cards_for(client, request) == []


def variant(change: Any) -> dict[str, Any]:
    request = copy.deepcopy(captured("order-sign-isotretinoin"))
    draft = the_draft(request)
    change(draft)
    return request


def words_only(draft: dict[str, Any]) -> None:
    draft["medicationCodeableConcept"] = {"text": "Isotretinoin 20 MG Oral Capsule"}


def valid_category(draft: dict[str, Any]) -> None:
    draft["category"] = [draft["category"]]


def contained(draft: dict[str, Any]) -> None:
    del draft["medicationCodeableConcept"]
    draft["contained"] = [{"resourceType": "Medication", "id": "med", "code": {"coding": [ISOTRETINOIN_20MG]}}]
    draft["medicationReference"] = {"reference": "#med"}


def r5_medication(draft: dict[str, Any]) -> None:
    draft["medication"] = {"concept": draft.pop("medicationCodeableConcept")}


def code_only(draft: dict[str, Any]) -> None:
    draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "197844"}]}


@pytest.mark.parametrize(
    "change", [words_only, valid_category, contained, r5_medication, code_only], ids=lambda f: f.__name__
)
def test_however_the_isotretinoin_is_written_the_card_is_critical(client: FlaskClient, change: Any) -> None:
    assert_critical_with_removal(cards_for(client, variant(change)))


def test_a_medication_read_from_the_fhir_server_is_identified(client: FlaskClient, httpserver: HTTPServer) -> None:
    """medicationReference without a display, the Medication neither contained nor prefetched:
    read from fhirServer (GUIDELINE §2 v2), then judged like any other."""
    httpserver.expect_request("/fhir/Medication/iso-20").respond_with_json(
        {"resourceType": "Medication", "id": "iso-20", "code": {"coding": [ISOTRETINOIN_20MG]}}
    )

    def by_reference(draft: dict[str, Any]) -> None:
        del draft["medicationCodeableConcept"]
        draft["medicationReference"] = {"reference": "Medication/iso-20"}

    request = variant(by_reference)
    request["fhirServer"] = httpserver.url_for("/fhir")
    assert_critical_with_removal(cards_for(client, request))
    assert [r.path for r, _ in httpserver.log] == ["/fhir/Medication/iso-20"]


def test_a_medication_that_cannot_be_identified_is_said_not_taken_for_safe(
    client: FlaskClient, httpserver: HTTPServer
) -> None:
    """The FHIR server does not have the Medication: the service cannot tell what is ordered,
    for a patient recorded as pregnant, and says so (never "no card", never 412)."""
    httpserver.expect_request("/fhir/Medication/unknown").respond_with_json(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, status=404
    )

    def by_reference(draft: dict[str, Any]) -> None:
        del draft["medicationCodeableConcept"]
        draft["medicationReference"] = {"reference": "Medication/unknown"}

    request = variant(by_reference)
    request["fhirServer"] = httpserver.url_for("/fhir")
    [card] = cards_for(client, request)
    assert card["indicator"] == "warning"
    assert card["summary"] == (
        "This order's medication could not be identified, and pregnancy is on record: confirm it is not a retinoid"
    )
    assert f"- {DRAFT}: draft order: medication Medication/unknown (not available to this service)" in card["detail"]


def test_patient_view_as_the_sandbox_sends_it(client: FlaskClient) -> None:
    response = client.post("/cds-services/acne-scar-treatment", json=captured("patient-view-isotretinoin-2-months"))
    assert response.status_code == 200
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert summaries[0].startswith("Isotretinoin last dose 2026-09-26: defer fully ablative laser")
    assert summaries[1].startswith("Ice-pick acne scars")
