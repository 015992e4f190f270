"""Order hooks (order-select, order-sign): what a clinician sees when ordering a scar procedure
or a retinoid, for every request in fixtures/orders/ (written by scripts/make_fixtures.py
against the fixture date 2026-11-26), posted over HTTP with the Flask test client.

Each card of the order services is about one draft order: its "Based on" list starts with
`- <Type>/<id>: draft order: <what>`, and its suggestions remove that draft (`delete` with the
draft's `resourceId`) or order something safer (`create`). Safe orders get `{"cards": []}`.

Behaviour the engine currently gets clinically wrong (GUIDELINE.md) is marked
xfail(strict=True, reason="DEFECT: ..."): a fix turns the test into a failure that asks for the
mark to be removed.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from flask.testing import FlaskClient

from cards.card_rules import fhir_problem
from cards.engine import Engine
from cards.terminology import Coding
from service.registry import ORDER_PREFETCH, PATIENT_VIEW_PREFETCH
from tests.support.paths import FIXTURES, load_json

ORDERS = FIXTURES / "orders"
SERVICE = {"order-sign": "/cds-services/acne-scar-order-sign", "order-select": "/cds-services/acne-scar-order-select"}
PROCEDURE = "https://acne-scar-cds.example/fhir/CodeSystem/acne-scar-procedure"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DRAFT_LINE = re.compile(r"^- (?P<ref>[A-Za-z]+/[A-Za-z0-9\-.]+): draft order: ", re.MULTILINE)
FIXTURE_NAMES = sorted(p.stem for p in ORDERS.glob("*.json"))
SAFE = [n for n in FIXTURE_NAMES if n.startswith("safe-orders-")]


# ----- helpers ------------------------------------------------------------------------------


def fixture(name: str) -> dict[str, Any]:
    return load_json(ORDERS / f"{name}.json")


def drafts(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's draft orders by reference ("ServiceRequest/<id>")."""
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
        for e in request["context"]["draftOrders"].get("entry", [])
    }


def draft(request: dict[str, Any], what: str, kind: str = "ServiceRequest") -> str:
    """The reference of the draft `<case>-<what>`; fails if the fixture has no such draft."""
    case = next(name for name in FIXTURE_NAMES if request["hookInstance"] == instance(name))
    reference = f"{kind}/{case}-{what}"
    assert reference in drafts(request), f"{case} has no draft {reference}"
    return reference


def instance(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def post(client: FlaskClient, request: dict[str, Any], hook: str | None = None) -> Any:
    return client.post(SERVICE[hook or request["hook"]], json=request)


def cards_of(client: FlaskClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    """POST the request to the service of its hook; the cards (200 expected)."""
    response = post(client, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def about(card: dict[str, Any]) -> str:
    """The draft order a card is about: the first `draft order` line of its "Based on"."""
    match = DRAFT_LINE.search(card["detail"])
    assert match, f"card names no draft order: {card['detail']}"
    return match["ref"]


def by_order(cards: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for card in cards:
        out.setdefault(about(card), []).append(card)
    return out


def actions(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == kind]


def suggestion_with(card: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [s for s in card.get("suggestions", []) if any(a["type"] == kind for a in s["actions"])]
    assert len(found) == 1, f"expected one {kind} suggestion: {card.get('suggestions')}"
    return found[0]


def assert_removes(card: dict[str, Any], reference: str, recommended: bool = True) -> None:
    """The card offers one click to remove exactly this draft order."""
    removal = suggestion_with(card, "delete")
    assert [a["resourceId"] for a in removal["actions"]] == [reference]
    assert removal["isRecommended"] is recommended
    assert card["selectionBehavior"] == "any"


def as_order_sign(request: dict[str, Any]) -> dict[str, Any]:
    """The same orders, about to be signed (order-sign has no selections)."""
    signed = copy.deepcopy(request)
    signed["hook"] = "order-sign"
    signed["context"].pop("selections", None)
    return signed


def with_drafts(request: dict[str, Any], *resources: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["context"]["draftOrders"]["entry"] = [{"resource": r} for r in resources]
    return changed


def service_request(
    patient: str,
    rid: str,
    text: str,
    code: tuple[str, str] | None = None,
    status: str = "draft",
    occurrence: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"text": text},
    }
    if code:
        resource["code"]["coding"] = [{"system": code[0], "code": code[1]}]
    if occurrence:
        resource["occurrenceDateTime"] = occurrence
    return resource


# ----- the fixtures themselves --------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_is_a_complete_order_request(name: str) -> None:
    request = fixture(name)
    assert request["hook"] in SERVICE
    assert request["hookInstance"] == instance(name)
    assert "fhirServer" not in request, "everything the service needs is in the request"
    assert list(request["prefetch"]) == list(ORDER_PREFETCH)
    context = request["context"]
    patient = context["patientId"]
    assert request["prefetch"]["patient"]["id"] == patient
    assert ("selections" in context) == (request["hook"] == "order-select")
    assert set(context.get("selections", [])) <= set(drafts(request))
    orders = drafts(request)
    assert orders
    for reference, resource in orders.items():
        assert resource["status"] == "draft", reference
        assert resource["subject"] == {"reference": f"Patient/{patient}"}
        assert fhir_problem(resource) is None, reference
    for entry in request["prefetch"]["serviceRequests"].get("entry", []):
        assert entry["resource"]["status"] == "active"
        assert fhir_problem(entry["resource"]) is None


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_card_is_about_a_draft_and_its_suggestions_are_usable(client: FlaskClient, name: str) -> None:
    """Whatever the case: each card names a draft order (a selected one, for order-select);
    every delete removes a draft of this request; every create is a valid FHIR draft for this
    patient."""
    request = fixture(name)
    targets = set(request["context"].get("selections", drafts(request)))
    patient = f"Patient/{request['context']['patientId']}"
    for card in cards_of(client, request):
        assert about(card) in targets
        assert about(card) in card["detail"]
        assert len(card["summary"]) < 140
        if card["indicator"] != "info":
            assert card["overrideReasons"], "warning and critical cards can be overridden with a reason"
        # A delete removes the card's own draft, or (isotretinoin with a procedure in the batch)
        # the procedure draft that should move.
        assert {a["resourceId"] for a in actions(card, "delete")} <= {about(card)} | set(drafts(request))
        for action in actions(card, "create"):
            resource = action["resource"]
            assert fhir_problem(resource) is None, resource
            assert resource["status"] == "draft"
            assert resource["subject"] == {"reference": patient}


# ----- R3: ablative procedures after isotretinoin -----------------------------------------


def test_ablative_after_isotretinoin_waits_until_six_months_after_the_last_dose(client: FlaskClient) -> None:
    request = fixture("ablative-after-isotretinoin")
    laser, punch_out, dermabrasion = (draft(request, w) for w in ("co2-laser", "laser-punch-out", "dermabrasion"))
    all_cards = cards_of(client, request)
    cards = by_order(c for c in all_cards if c["indicator"] == "warning")

    assert set(cards) == {laser, punch_out, dermabrasion}, "one card per deferred order"
    # R7 (v2): prophylaxis for every patient having full-face resurfacing, once for the batch
    # (laser punch-out is focal: not full-face).
    [prophylaxis] = [c for c in all_cards if c["indicator"] == "info"]
    assert prophylaxis["summary"].startswith("Resurfacing order: add antiviral prophylaxis")
    assert all(f"- {r}: draft order" in prophylaxis["detail"] for r in (laser, dermabrasion))
    assert f"- {punch_out}: draft order" not in prophylaxis["detail"]
    for reference, (card, *others) in cards.items():
        assert others == []
        assert card["indicator"] == "warning"
        assert "2026-09-26" in card["summary"] and "2027-03-26" in card["summary"]
        assert "Spring 2017" in card["detail"] and "Waldman 2017" in card["detail"]
        assert "MedicationStatement/isotretinoin-2-months-isotretinoin" in card["detail"]
        assert_removes(card, reference)
        assert actions(card, "create") == []
    # Recognised by local code, by text only, by CPT 15780 respectively:
    assert "Fully ablative laser resurfacing" in suggestion_with(cards[laser][0], "delete")["label"]
    assert "Laser punch-out" in suggestion_with(cards[punch_out][0], "delete")["label"]
    assert "Mechanical (motorised, full-face) dermabrasion" in cards[dermabrasion][0]["detail"]


# ----- R5: retinoids in pregnancy ---------------------------------------------------------


def test_retinoid_selected_for_a_pregnant_patient_is_critical(client: FlaskClient) -> None:
    request = fixture("retinoid-pregnant")
    isotretinoin = draft(request, "isotretinoin", "MedicationRequest")
    clindamycin = draft(request, "clindamycin-gel", "MedicationRequest")
    assert request["context"]["selections"] == [isotretinoin]

    [card] = cards_of(client, request)

    assert card["indicator"] == "critical"
    assert "pregnant" in card["summary"] and "Retinoid" in card["summary"]
    assert about(card) == isotretinoin
    assert "Condition/pregnant-pregnancy" in card["detail"]
    assert "contraindicated in pregnancy" in card["detail"]
    assert clindamycin not in card["detail"]
    assert_removes(card, isotretinoin)


def test_the_safe_draft_stays_silent_when_all_are_signed(client: FlaskClient) -> None:
    request = fixture("retinoid-pregnant")
    cards = cards_of(client, as_order_sign(request))
    assert [about(c) for c in cards] == [draft(request, "isotretinoin", "MedicationRequest")]


def test_topical_tretinoin_for_a_pregnant_patient_is_critical(client: FlaskClient) -> None:
    request = fixture("retinoid-pregnant-topical-tretinoin")
    tretinoin = draft(request, "tretinoin-gel", "MedicationRequest")

    [card] = cards_of(client, request)

    assert card["indicator"] == "critical"
    assert about(card) == tretinoin
    assert "tretinoin and adapalene are inconclusive" in card["detail"]
    assert "Labels" in card["detail"] and "AAD 2024" not in card["detail"]  # v2: the labels say so
    assert_removes(card, tretinoin)


# ----- R3 the other way round: isotretinoin with a procedure planned ---------------------


def test_isotretinoin_with_an_ablative_laser_booked_warns(client: FlaskClient) -> None:
    request = fixture("isotretinoin-with-planned-procedure")
    isotretinoin = draft(request, "isotretinoin", "MedicationRequest")
    [planned] = request["prefetch"]["serviceRequests"]["entry"]
    planned_ref = f"ServiceRequest/{planned['resource']['id']}"

    [card] = cards_of(client, request)

    assert card["indicator"] == "warning"
    # no dosage bounds: a 6-month course from 2026-11-26, then 6 months' wait (R3)
    assert "booked before 2027-11-26: move the procedure" in card["summary"]
    assert about(card) == isotretinoin
    assert f"{planned_ref}: planned: Fully ablative laser resurfacing" in card["detail"]
    assert "2027-02-15" in card["detail"]
    [remove] = card["suggestions"]  # the booked procedure is not a draft: only isotretinoin can be removed here
    assert remove["actions"][0]["resourceId"] == isotretinoin and remove["isRecommended"] is False


def test_isotretinoin_with_nothing_booked_is_silent(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("isotretinoin-with-planned-procedure"))
    request["prefetch"]["serviceRequests"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    assert cards_of(client, request) == []


def test_isotretinoin_with_dermabrasion_in_the_same_batch_warns(client: FlaskClient) -> None:
    request = fixture("isotretinoin-with-procedure-in-batch")
    isotretinoin = draft(request, "isotretinoin", "MedicationRequest")
    dermabrasion = draft(request, "dermabrasion")

    cards = by_order(cards_of(client, request))

    [card] = cards[isotretinoin]
    assert card["indicator"] == "warning"
    assert f"{dermabrasion}: planned: Mechanical (motorised, full-face) dermabrasion on 2027-01-14" in card["detail"]
    recommended = [s["actions"][0]["resourceId"] for s in card["suggestions"] if s["isRecommended"]]
    assert recommended == [dermabrasion], "move the elective procedure, not the isotretinoin (AAD 2024)"
    assert not any(c["summary"].startswith("Isotretinoin") for c in cards.get(dermabrasion, [])), (
        "isotretinoin not yet taken is no reason to defer the dermabrasion itself"
    )


# ----- R4: skin of colour -----------------------------------------------------------------


def test_ablative_laser_and_deep_peels_in_fitzpatrick_v_offer_non_ablative_laser(client: FlaskClient) -> None:
    request = fixture("ablative-fitzpatrick-v")
    laser, deep, dermal = (draft(request, w) for w in ("co2-laser", "deep-peel", "dermal-peel"))
    patient = "Patient/stacked-isotretinoin-fitzpatrick-v"

    cards = by_order(cards_of(client, request))

    assert set(cards) == {laser, deep, dermal}
    for reference in (laser, deep, dermal):
        [card] = [c for c in cards[reference] if c["summary"].startswith("Fitzpatrick V skin")]
        assert card["indicator"] == "warning"
        assert "hyperpigmentation" in card["summary"]
        assert "Observation/stacked-isotretinoin-fitzpatrick-v-fitzpatrick" in card["detail"]
        assert "Khunger 2011" in card["detail"]
        assert_removes(card, reference)
        instead = suggestion_with(card, "create")
        assert instead["label"] == "Order instead: Non-ablative fractional laser"
        [action] = instead["actions"]
        resource = action["resource"]
        assert fhir_problem(resource) is None
        assert resource["resourceType"] == "ServiceRequest"
        assert resource["status"] == "draft"
        assert resource["subject"] == {"reference": patient}
        assert resource["code"]["coding"] == [
            {"system": PROCEDURE, "code": "non-ablative-fractional-laser", "display": "Non-ablative fractional laser"}
        ]
    # Warnings stack: isotretinoin stopped 2026-08-26 also defers the (fully ablative) laser only.
    [r3] = [c for c in cards[laser] if c["summary"].startswith("Isotretinoin")]
    assert "2027-02-26" in r3["summary"]
    assert all(not c["summary"].startswith("Isotretinoin") for c in cards[deep] + cards[dermal])


# ----- R6: keloids ------------------------------------------------------------------------


def test_punch_excision_and_cross_with_a_keloid_history_ask_for_a_test_spot(client: FlaskClient) -> None:
    request = fixture("punch-with-keloid")
    punch, cross, subcision = (draft(request, w) for w in ("punch-excision", "tca-cross", "subcision"))

    cards = by_order(cards_of(client, request))

    assert set(cards) == {punch, cross}, "subcision is not a keloid risk in the guideline (R6)"
    for reference in (punch, cross):
        [card] = cards[reference]
        assert card["indicator"] == "warning"
        assert "Keloid history" in card["summary"] and "test spot" in card["summary"]
        assert "Condition/keloid-history-keloid" in card["detail"]
        assert "Jacob 2001" in card["detail"]
        assert_removes(card, reference, recommended=False)  # a conservative approach, not a ban
    assert "TCA CROSS" in suggestion_with(cards[cross][0], "delete")["label"], "recognised from text"
    assert subcision not in str(cards)


# ----- R7: herpes simplex -----------------------------------------------------------------


def test_resurfacing_with_a_herpes_history_suggests_valacyclovir(client: FlaskClient, engine: Engine) -> None:
    request = fixture("resurfacing-herpes-history")
    laser = draft(request, "co2-laser")

    [card] = cards_of(client, request)

    assert card["indicator"] == "info"
    assert about(card) == laser
    assert "valacyclovir" in card["summary"]
    assert "500 mg twice daily" in card["detail"] and "day before" in card["detail"]
    assert "Condition/herpes-history-hsv" in card["detail"]
    assert "Gilbert 2000" in card["detail"]
    assert actions(card, "delete") == [], "with prophylaxis the procedure can go ahead"
    prophylaxis = suggestion_with(card, "create")
    assert prophylaxis["isRecommended"] is True
    [action] = prophylaxis["actions"]
    resource = action["resource"]
    assert fhir_problem(resource) is None
    assert resource["resourceType"] == "MedicationRequest"
    assert resource["status"] == "draft"
    assert resource["subject"] == {"reference": "Patient/herpes-history"}
    assert "500 mg" in resource["dosageInstruction"][0]["text"]
    medication = resource["medicationCodeableConcept"]
    codings = [Coding(c["system"], c["code"], c.get("display")) for c in medication.get("coding", [])]
    assert engine.terminology["hsv-antiviral"].matches(codings, [medication.get("text")])


def test_resurfacing_with_valacyclovir_in_the_batch_is_silent(client: FlaskClient) -> None:
    request = fixture("resurfacing-herpes-history-with-valacyclovir")
    draft(request, "valacyclovir", "MedicationRequest")
    assert post(client, request).get_json() == {"cards": []}


def test_dermabrasion_with_active_herpes_is_deferred(client: FlaskClient) -> None:
    request = fixture("resurfacing-herpes-active")
    dermabrasion = draft(request, "dermabrasion")

    [card] = cards_of(client, request)

    assert card["indicator"] == "warning"
    assert about(card) == dermabrasion
    assert "Active herpes simplex" in card["summary"] and "healed" in card["summary"]
    assert "Condition/herpes-active-hsv" in card["detail"]
    assert_removes(card, dermabrasion)


# ----- safe orders and order-select -------------------------------------------------------


@pytest.mark.parametrize("name", SAFE)
def test_safe_orders_get_no_card(client: FlaskClient, name: str) -> None:
    response = post(client, fixture(name))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_order_select_is_only_about_the_selected_orders(client: FlaskClient) -> None:
    request = fixture("order-select-unselected-risky")
    laser, subcision = draft(request, "co2-laser"), draft(request, "subcision")
    assert request["context"]["selections"] == [subcision]

    assert post(client, request).get_json() == {"cards": []}, "the risky laser was not selected"

    selected = copy.deepcopy(request)
    selected["context"]["selections"] = [subcision, laser]
    assert {about(c) for c in cards_of(client, selected)} == {laser}
    assert {about(c) for c in cards_of(client, as_order_sign(request))} == {laser}, "signing checks all"


# ----- discovery and errors ---------------------------------------------------------------


def test_discovery_lists_the_three_services(client: FlaskClient) -> None:
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert {i: s["hook"] for i, s in services.items()} == {
        "acne-scar-treatment": "patient-view",
        "acne-scar-order-select": "order-select",
        "acne-scar-order-sign": "order-sign",
    }
    assert services["acne-scar-treatment"]["prefetch"] == PATIENT_VIEW_PREFETCH
    for service in ("acne-scar-order-select", "acne-scar-order-sign"):
        assert services[service]["prefetch"] == ORDER_PREFETCH
        assert services[service]["prefetch"]["serviceRequests"] == (
            "ServiceRequest?patient={{context.patientId}}&status=active"
        )
        assert services[service]["title"] and services[service]["description"]


def bad_request(client: FlaskClient, request: dict[str, Any], hook: str | None = None) -> dict[str, Any]:
    response = post(client, request, hook)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid-request"
    return body["errors"]


def test_order_select_without_selections_is_400(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("retinoid-pregnant"))
    del request["context"]["selections"]
    assert bad_request(client, request) == {"context": {"selections": ["Missing data for required field."]}}


def test_draft_orders_that_are_not_a_bundle_are_400(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("ablative-after-isotretinoin"))
    request["context"]["draftOrders"] = {"resourceType": "List", "status": "current", "mode": "working"}
    errors = bad_request(client, request)
    assert errors == {"context": {"draftOrders": {"resourceType": ["Must be a Bundle."]}}}


def test_a_draft_without_an_id_is_400(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("ablative-after-isotretinoin"))
    del request["context"]["draftOrders"]["entry"][1]["resource"]["id"]
    errors = bad_request(client, request)
    assert "entry[1].resource needs an id" in errors["context"]["draftOrders"]["entry"][0]


def test_an_order_request_sent_to_another_hooks_service_is_400(client: FlaskClient) -> None:
    errors = bad_request(client, fixture("retinoid-pregnant"), hook="order-sign")
    assert errors["hook"] == ["This service answers the 'order-sign' hook, not 'order-select'."]


def test_missing_service_requests_without_a_fhir_server_is_412(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("isotretinoin-with-planned-procedure"))
    del request["prefetch"]["serviceRequests"]
    response = post(client, request)
    assert response.status_code == 412
    body = response.get_json()
    assert body["error"] == "prefetch-unavailable"
    assert body["missing"] == [
        {
            "key": "serviceRequests",
            "query": "ServiceRequest?patient=active-acne&status=active",
            "reason": "not prefetched and no fhirServer to fetch it from",
        }
    ]


def test_a_draft_with_an_unreadable_date_is_still_checked(client: FlaskClient) -> None:
    """GUIDELINE §1 (v2): a draft that breaks a FHIR rule the rules do not depend on is read, not
    refused: the tretinoin for a pregnant patient is still critical, and the card says what of the
    draft could not be read."""
    request = copy.deepcopy(fixture("retinoid-pregnant-topical-tretinoin"))
    tretinoin = draft(request, "tretinoin-gel", "MedicationRequest")
    request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"] = "26/11/2026"
    [card] = cards_of(client, request)
    assert card["indicator"] == "critical" and about(card) == tretinoin
    assert "could not read authoredOn: not a valid FHIR date or time" in card["detail"]
    assert_removes(card, tretinoin)


def test_a_draft_for_another_patient_is_named_not_checked_as_this_patients(client: FlaskClient) -> None:
    """A draft naming another patient is an integration fault: never read as this patient's,
    never silence either. One warning names it."""
    request = copy.deepcopy(fixture("punch-with-keloid"))
    request["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/someone-else"}
    cards = cards_of(client, request)
    [foreign] = [c for c in cards if c["summary"].startswith("Records naming another patient")]
    assert f"- {draft(request, 'punch-excision')}: it names another patient" in foreign["detail"]
    assert draft(request, "punch-excision") not in {about(c) for c in cards if c is not foreign}


def test_a_procedure_ordered_for_a_pregnant_patient_is_deferred(client: FlaskClient) -> None:
    request = fixture("safe-orders-non-retinoid-pregnant")
    cross = service_request("pregnant", "pregnant-tca-cross", "TCA CROSS, ice-pick scars", (PROCEDURE, "tca-cross"))
    cards = by_order(cards_of(client, with_drafts(request, cross)))
    assert [c["indicator"] for c in cards.get("ServiceRequest/pregnant-tca-cross", [])] == ["warning"]


def test_resurfacing_ordered_over_active_acne_is_deferred(client: FlaskClient) -> None:
    request = fixture("isotretinoin-with-planned-procedure")
    laser = service_request(
        "active-acne",
        "active-acne-co2-laser",
        "Full-face CO2 laser resurfacing",
        (PROCEDURE, "ablative-laser-resurfacing"),
    )
    cards = by_order(cards_of(client, with_drafts(request, laser)))
    # R2's warning, and R7's prophylaxis (v2: for every patient having resurfacing).
    assert [c["indicator"] for c in cards.get("ServiceRequest/active-acne-co2-laser", [])] == ["warning", "info"]


def test_a_selection_not_among_the_drafts_is_400(client: FlaskClient) -> None:
    request = copy.deepcopy(fixture("retinoid-pregnant"))
    request["context"]["selections"] = ["MedicationRequest/not-in-the-bundle"]
    assert post(client, request).status_code == 400


def test_the_valacyclovir_suggestion_names_drug_dose_and_timing(client: FlaskClient) -> None:
    """No RxNorm code for valacyclovir 500 mg tablets was verified (GUIDELINE: never a guessed
    code), so the draft prescription is named in words the prescriber confirms."""
    [card] = cards_of(client, fixture("resurfacing-herpes-history"))
    [action] = suggestion_with(card, "create")["actions"]
    resource = action["resource"]
    assert resource["medicationCodeableConcept"] == {"text": "valacyclovir 500 mg oral tablet"}
    dosage = resource["dosageInstruction"][0]["text"]
    assert "twice daily, from the day before (or the morning of) the procedure" in dosage
    assert "10 to 14 days in all" in dosage  # v2: the complete regimen (Gilbert 2000; Beeson 2002)


def test_one_valacyclovir_suggestion_per_order_batch(client: FlaskClient) -> None:
    request = fixture("resurfacing-herpes-history")
    laser = drafts(request)[draft(request, "co2-laser")]
    peel = service_request(
        "herpes-history",
        "herpes-history-dermal-peel",
        "Chemical peel, facial, dermal",
        ("http://www.ama-assn.org/go/cpt", "15789"),
    )
    cards = cards_of(client, with_drafts(request, laser, peel))
    creates = [a for c in cards for a in actions(c, "create")]
    assert len(creates) == 1


def test_a_full_face_tca_peel_in_words_is_a_medium_depth_peel(client: FlaskClient) -> None:
    request = fixture("resurfacing-herpes-history")
    peel = service_request("herpes-history", "herpes-history-tca-peel", "35% TCA peel, full face")
    cards = cards_of(client, with_drafts(request, peel))
    assert [about(c) for c in cards] == ["ServiceRequest/herpes-history-tca-peel"]


def test_isotretinoin_with_a_laser_booked_after_the_course_but_inside_the_window_warns(
    client: FlaskClient,
) -> None:
    request = copy.deepcopy(fixture("isotretinoin-with-planned-procedure"))
    [planned] = request["prefetch"]["serviceRequests"]["entry"]
    planned["resource"]["occurrenceDateTime"] = "2027-08-16T09:00:00Z"
    assert [c["indicator"] for c in cards_of(client, request)] == ["warning"]


def test_removing_isotretinoin_is_not_the_recommended_action(client: FlaskClient) -> None:
    request = fixture("isotretinoin-with-planned-procedure")
    [card] = cards_of(client, request)
    assert suggestion_with(card, "delete")["isRecommended"] is False


# ----- guideline v2 ---------------------------------------------------------------------------


def test_tretinoin_for_a_pregnancy_coded_in_icd10_cm_is_critical(client: FlaskClient) -> None:
    """v2 §5 scenario 7: Z33.1 + Z3A.10 on the problem list is pregnancy (v1 signed this silently)."""
    request = fixture("retinoid-pregnant-icd10-topical-tretinoin")
    tretinoin = draft(request, "tretinoin-gel", "MedicationRequest")
    [card] = cards_of(client, request)
    assert card["indicator"] == "critical" and about(card) == tretinoin
    assert "Condition/pregnant-icd10-pregnant-state" in card["detail"]
    assert_removes(card, tretinoin)


def test_resurfacing_gets_the_full_prophylaxis_regimen_whatever_the_herpes_history(client: FlaskClient) -> None:
    """v2 R7: prophylaxis is common practice for every patient having ablative laser (Gilbert 2001)."""
    request = fixture("resurfacing-prophylaxis")
    [card] = cards_of(client, request)
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Resurfacing order: add antiviral prophylaxis (valacyclovir)")
    assert "whatever their history (Gilbert 2001)" in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is True
    [action] = suggestion["actions"]
    assert action["type"] == "create" and "10 to 14 days in all" in action["resource"]["dosageInstruction"][0]["text"]


def test_an_antiviral_on_record_is_checked_not_prescribed_again(client: FlaskClient) -> None:
    """v2 R7: "antiviral on record: check that it covers the procedure period", no second course."""
    request = fixture("resurfacing-antiviral-on-record")
    [card] = cards_of(client, request)
    assert card["indicator"] == "info"
    assert card["summary"] == "Antiviral on record: check that it covers the period of this resurfacing procedure"
    assert "MedicationStatement/herpes-history-antiviral-valacyclovir" in card["detail"]
    assert "suggestions" not in card


def test_a_medium_peel_within_6_months_of_isotretinoin_is_information_without_removal(client: FlaskClient) -> None:
    """v2 R3: no consensus addresses medium or deep peels after isotretinoin; the label advises 6
    months: an info card for the clinician's judgement, no delete suggestion."""
    request = fixture("medium-peel-after-isotretinoin")
    peel = draft(request, "medium-peel")
    cards = by_order(cards_of(client, request))
    [info, prophylaxis] = cards[peel]
    assert info["indicator"] == "info"
    assert info["summary"].startswith("Medium or deep peel within 6 months of isotretinoin")
    assert "Isotretinoin: last dose 2026-09-26" in info["detail"] and "Labels" in info["detail"]
    assert actions(info, "delete") == []
    assert prophylaxis["summary"].startswith("Resurfacing order: add antiviral prophylaxis")


def test_an_ablative_order_with_a_medication_that_cannot_be_identified_asks_to_confirm(client: FlaskClient) -> None:
    """v2 §1: the prescription and fill point at a Medication the service cannot see; it could be
    isotretinoin, so the laser order waits for the clinician to confirm (removal offered, not urged)."""
    request = fixture("ablative-with-unidentified-medication")
    laser = draft(request, "co2-laser")
    [warning] = [c for c in cards_of(client, request) if c["indicator"] == "warning"]
    assert about(warning) == laser
    assert warning["summary"] == (
        "A medication on record could not be identified: confirm no isotretinoin in the last 6 months before this order"
    )
    assert (
        "MedicationRequest/isotretinoin-medication-unavailable-isotretinoin-rx: could not be identified"
        in warning["detail"]
    )
    assert_removes(warning, laser, recommended=False)


def test_pregnancy_status_uncertain_holds_retinoids_and_procedures_until_confirmed(client: FlaskClient) -> None:
    request = fixture("retinoid-and-procedure-pregnancy-uncertain")
    tretinoin, punch = draft(request, "tretinoin-gel", "MedicationRequest"), draft(request, "punch-excision")
    cards = by_order(cards_of(client, request))
    [retinoid], [procedure] = cards[tretinoin], cards[punch]
    assert retinoid["summary"] == "Pregnancy status uncertain: confirm it before this retinoid order"
    assert procedure["summary"] == "Pregnancy status uncertain: confirm it before this elective scar procedure"
    assert "Condition/pregnancy-uncertain-hyperemesis" in retinoid["detail"]
    assert_removes(retinoid, tretinoin)
    assert_removes(procedure, punch, recommended=False)
    assert {"pregnancy-ruled-out"} <= {r["code"] for r in retinoid["overrideReasons"]}


def test_a_draft_that_cannot_be_read_at_all_is_said_not_passed_as_safe(client: FlaskClient) -> None:
    """GUIDELINE §1 (v2): no rule could check it, and silence would read as "safe"."""
    request = copy.deepcopy(fixture("resurfacing-prophylaxis"))
    laser = draft(request, "co2-laser")
    request["context"]["draftOrders"]["entry"][0]["resource"]["contained"] = {"resourceType": "Nope"}
    [card] = cards_of(client, request)
    assert card["indicator"] == "warning" and about(card) == laser
    assert card["summary"] == "This draft order could not be read, so it was not checked: check it before signing"


@pytest.mark.parametrize(
    ("name", "what", "indicator", "summary", "removal"),
    [
        (
            "ablative-isotretinoin-current",
            "co2-laser",
            "warning",
            "Isotretinoin is current: this ablative laser or dermabrasion order should wait until 6 months after the "
            "last dose",
            True,
        ),
        (
            "ablative-isotretinoin-last-dose-unknown",
            "laser-punch-out",
            "warning",
            "Isotretinoin on record with no last dose date: confirm it before this ablative laser or "
            "dermabrasion order",
            True,
        ),
        (
            "procedure-pregnant",
            "punch-excision",
            "warning",
            "Pregnancy: this elective scar procedure can wait until after pregnancy",
            True,
        ),
        (
            "unidentified-drug-pregnant",
            "unidentified-drug",
            "warning",
            "This order's medication could not be identified, and pregnancy is on record: confirm it is not a retinoid",
            False,
        ),
        (
            "punch-excision-herpes-active",
            "punch-excision",
            "info",
            "Active herpes simplex: consider deferring this procedure at the site of the lesions",
            None,
        ),
    ],
)
def test_the_order_card_of_each_case(
    client: FlaskClient, name: str, what: str, indicator: str, summary: str, removal: bool | None
) -> None:
    """One fixture per order card (fixtures/README.md, "Order hooks"), so that every card of the
    catalogue is shown by an example patient (the review package lists those it cannot show)."""
    request = fixture(name)
    kind = "MedicationRequest" if what == "unidentified-drug" else "ServiceRequest"
    reference = draft(request, what, kind)
    [card] = [c for c in cards_of(client, request) if c["summary"] == summary]
    assert card["indicator"] == indicator and about(card) == reference
    if removal is None:
        assert "suggestions" not in card
    else:
        assert_removes(card, reference, recommended=removal)
