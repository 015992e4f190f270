"""Feedback (CDS Hooks 2.0.1 §Feedback) over HTTP: validated, tied to the issued card, stored
once, and counted in the report content reviewers read."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.settings import Settings
from tests.support.feedback import FEEDBACK_URL, accepted, issue_cards, overridden, report_entry


@pytest.fixture
def settings(settings: Settings, database_url: str) -> Settings:
    return replace(settings, database_url=database_url)


def test_accepted_and_overridden_feedback_shows_in_the_report(client: FlaskClient) -> None:
    cards = issue_cards(client)
    plan, warning = cards["info"], cards["warning"]
    response = client.post(
        FEEDBACK_URL,
        json={
            "feedback": [
                accepted(plan, plan["suggestions"][0]),
                overridden(warning, "procedure-not-planned"),
            ]
        },
    )
    assert response.status_code == 200
    assert response.get_json() == {"stored": 2, "duplicates": 0}
    assert report_entry(client, "isotretinoin-recent") == {
        "service": "acne-scar-treatment",
        "card": "isotretinoin-recent",
        "issued": 1,
        "accepted": 0,
        "overridden": 1,
        "acceptance_rate": 0.0,
        "top_override_reasons": [{"code": "procedure-not-planned", "count": 1}],
    }
    assert report_entry(client, "treatment-plan-ice-pick")["acceptance_rate"] == 1.0
    suggestions = client.get("/feedback-report").get_json()["suggestions"]
    taken = {s["suggestion"]: (s["offered"], s["accepted"]) for s in suggestions}
    assert taken["tca-cross"] == (1, 1) and taken["punch-excision"] == (1, 0)


def test_duplicate_feedback_is_stored_once(client: FlaskClient) -> None:
    warning = issue_cards(client)["warning"]
    item = overridden(warning, "record-incorrect")
    assert client.post(FEEDBACK_URL, json={"feedback": [item]}).get_json() == {"stored": 1, "duplicates": 0}
    assert client.post(FEEDBACK_URL, json={"feedback": [item, item]}).get_json() == {"stored": 0, "duplicates": 2}
    assert report_entry(client, "isotretinoin-recent")["overridden"] == 1


def test_feedback_on_a_card_never_issued_is_rejected_and_the_rest_stored(client: FlaskClient) -> None:
    warning = issue_cards(client)["warning"]
    stranger = dict(warning, uuid="0f0f0f0f-1111-4222-8333-444455556666")
    response = client.post(FEEDBACK_URL, json={"feedback": [overridden(warning), overridden(stranger)]})
    assert response.status_code == 200
    assert response.get_json() == {
        "stored": 1,
        "duplicates": 0,
        "rejected": [
            {
                "item": 1,
                "error": "unknown-card",
                "message": "feedback[1]: card 0f0f0f0f-1111-4222-8333-444455556666 was not issued by this service.",
            }
        ],
    }
    assert report_entry(client, "isotretinoin-recent")["overridden"] == 1


def test_feedback_with_only_unknown_cards_is_422(client: FlaskClient) -> None:
    warning = issue_cards(client)["warning"]
    stranger = dict(warning, uuid="0f0f0f0f-1111-4222-8333-444455556666")
    response = client.post(FEEDBACK_URL, json={"feedback": [overridden(stranger)]})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "unknown-card"
    assert body["message"].startswith("No item could be stored: feedback[0]: card 0f0f0f0f")
    assert report_entry(client, "isotretinoin-recent")["overridden"] == 0


def test_one_instant_in_two_time_zones_is_one_item(client: FlaskClient) -> None:
    """Duplicates are the same instant, whatever the offset (SQLite keeps no offset)."""
    warning = issue_cards(client)["warning"]
    first = client.post(FEEDBACK_URL, json={"feedback": [overridden(warning, when="2026-11-26T10:00:00Z")]})
    same = client.post(FEEDBACK_URL, json={"feedback": [overridden(warning, when="2026-11-26T11:00:00+01:00")]})
    other = client.post(FEEDBACK_URL, json={"feedback": [overridden(warning, when="2026-11-26T10:00:00+01:00")]})
    assert (first.get_json()["stored"], same.get_json()["duplicates"], other.get_json()["stored"]) == (1, 1, 1)


def test_suggestion_of_another_card_is_422(client: FlaskClient) -> None:
    cards = issue_cards(client)
    other = {"uuid": "9a9a9a9a-1111-4222-8333-444455556666"}
    response = client.post(FEEDBACK_URL, json={"feedback": [accepted(cards["info"], other)]})
    assert response.status_code == 422
    assert "is not a suggestion of card" in response.get_json()["message"]


def test_override_reason_not_offered_on_the_card_is_422(client: FlaskClient) -> None:
    warning = issue_cards(client)["warning"]
    response = client.post(FEEDBACK_URL, json={"feedback": [overridden(warning, "made-up")]})
    assert response.status_code == 422
    assert "override reason 'made-up' was not offered" in response.get_json()["message"]


@pytest.mark.parametrize(
    "item, field, message",
    [
        (
            {"outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:00:00Z"},
            "acceptedSuggestions",
            "Required when the outcome is accepted.",
        ),
        (
            {"outcome": "ignored", "outcomeTimestamp": "2026-11-26T10:00:00Z"},
            "outcome",
            "Must be one of: accepted, overridden.",
        ),
        (
            {"outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00"},
            "outcomeTimestamp",
            "Must be a FHIR instant with a time zone (2026-11-26T10:00:00Z).",
        ),
    ],
)
def test_invalid_items_are_400_with_field_messages(
    client: FlaskClient, item: dict[str, Any], field: str, message: str
) -> None:
    warning = issue_cards(client)["warning"]
    response = client.post(FEEDBACK_URL, json={"feedback": [dict(item, card=warning["uuid"])]})
    assert response.status_code == 400
    assert response.get_json()["errors"]["feedback"]["0"][field] == [message]


def test_feedback_for_an_unknown_service_is_404(client: FlaskClient) -> None:
    response = client.post("/cds-services/nope/feedback", json={"feedback": []})
    assert response.status_code == 404


def test_comments_are_not_kept_by_default(client: FlaskClient, app: Any) -> None:
    """Free text may name a patient: stored only when FEEDBACK_KEEP_COMMENTS is on."""
    import sqlalchemy as sa

    from service.store import feedback

    warning = issue_cards(client)["warning"]
    client.post(FEEDBACK_URL, json={"feedback": [overridden(warning, comment="Jane Doe declined")]})
    with app.extensions["cds_store"].engine.connect() as connection:
        comments = connection.execute(sa.select(feedback.c.user_comment)).scalars().all()
    assert comments == [None]


def test_feedback_report_command(
    client: FlaskClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`acne-scar-cds feedback-report` reads the same database the service writes."""
    from service.cli import main

    cards = issue_cards(client)
    client.post(FEEDBACK_URL, json={"feedback": [overridden(cards["warning"], "benefit-outweighs-risk")]})
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert main(["feedback-report"]) == 0
    out = capsys.readouterr().out
    assert "isotretinoin-recent" in out and "benefit-outweighs-risk (1)" in out
    assert main(["feedback-report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["card"] for c in report["cards"]} == {"isotretinoin-recent", "treatment-plan-ice-pick"}


def test_a_card_dismissed_after_it_was_accepted_counts_once_as_overridden(client: FlaskClient) -> None:
    """The CDS Hooks sandbox lets a clinician dismiss (with a reason) a card whose suggestion was
    already accepted: the report counts that card once, by what the clinician finally did; the
    suggestion taken still counts as taken."""
    plan = issue_cards(client)["info"]
    tca = plan["suggestions"][0]
    first, then = accepted(plan, tca, when="2026-11-26T10:00:00Z"), overridden(plan, when="2026-11-26T10:05:00Z")
    for item in (first, then):  # two calls, as the sandbox sends them
        assert client.post(FEEDBACK_URL, json={"feedback": [item]}).status_code == 200
    entry = report_entry(client, "treatment-plan-ice-pick")
    assert (entry["issued"], entry["accepted"], entry["overridden"], entry["acceptance_rate"]) == (1, 0, 1, 0.0)
    taken = {
        s["suggestion"]: (s["offered"], s["accepted"]) for s in client.get("/feedback-report").get_json()["suggestions"]
    }
    assert taken["tca-cross"] == (1, 1)


def test_an_accepted_suggestion_sent_again_with_a_new_time_counts_once(client: FlaskClient) -> None:
    """The sandbox re-sends an accepted suggestion with a new outcomeTimestamp: stored (it is a new
    item), counted once: one card accepted, one suggestion taken."""
    plan = issue_cards(client)["info"]
    tca = plan["suggestions"][0]
    for when in ("2026-11-26T10:00:00Z", "2026-11-26T10:00:07Z"):
        assert client.post(FEEDBACK_URL, json={"feedback": [accepted(plan, tca, when=when)]}).get_json() == {
            "stored": 1,
            "duplicates": 0,
        }
    entry = report_entry(client, "treatment-plan-ice-pick")
    assert (entry["issued"], entry["accepted"], entry["overridden"]) == (1, 1, 0)
    taken = {
        s["suggestion"]: (s["offered"], s["accepted"]) for s in client.get("/feedback-report").get_json()["suggestions"]
    }
    assert taken["tca-cross"] == (1, 1)
