"""Feedback for the service's tests (CDS Hooks 2.0.1 §Feedback): cards issued by one call, and
feedback items about them."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.support.fhir import icepick_scar, isotretinoin_statement
from tests.support.hooks import SERVICE_URL, hook_request

FEEDBACK_URL = SERVICE_URL + "/feedback"
OVERRIDE = "https://acne-scar-cds.example/fhir/CodeSystem/override-reason"


def issue_cards(client: FlaskClient) -> dict[str, dict[str, Any]]:
    """One patient-view call (ice-pick scars, isotretinoin stopped two months ago): the
    treatment plan (`info`, with suggestions) and the isotretinoin warning (`warning`, with
    override reasons), by indicator."""
    response = client.post(SERVICE_URL, json=hook_request(icepick_scar(), isotretinoin_statement()))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = {c["indicator"]: c for c in response.get_json()["cards"]}
    assert cards["info"]["suggestions"] and cards["warning"]["overrideReasons"]
    return cards


def accepted(card: dict[str, Any], *suggestions: dict[str, Any], when: str = "2026-11-26T10:00:00Z") -> dict[str, Any]:
    """The card accepted, with `suggestions` taken (by default its first)."""
    taken = suggestions or (card["suggestions"][0],)
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": when,
        "acceptedSuggestions": [{"id": s["uuid"]} for s in taken],
    }


def overridden(
    card: dict[str, Any], code: str | None = None, when: str = "2026-11-26T10:01:00Z", comment: str | None = None
) -> dict[str, Any]:
    """The card overridden, with the override reason `code` and the comment when given."""
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": when}
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"system": OVERRIDE, "code": code, "display": code}
    if comment:
        reason["userComment"] = comment
    if reason:
        item["overrideReason"] = reason
    return item


def report_entry(client: FlaskClient, card_id: str) -> dict[str, Any]:
    report = client.get("/feedback-report").get_json()
    return next(c for c in report["cards"] if c["card"] == card_id)
