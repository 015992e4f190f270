"""The feedback dashboard: GET /feedback-report with Accept: text/html (JSON stays the default),
charts drawn by the service as SVG, rendered in a real browser from the data of a feedback run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient

from cards.render import RenderedCard
from service.app import create_app
from service.settings import CardsMode, Settings
from tests.service.test_contract import SPEC_PATH, response_validator
from tests.support.paths import FIXTURES, load_json
from tests.system.test_api_docs_browser import needs_chromium, open_in_chromium

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
TREATMENT = "acne-scar-treatment"


def feedback_run(base: str) -> None:
    """What a short pilot leaves behind: patient-view live (cards acted on), order-sign silent."""
    post = requests.Session()
    for name in ("isotretinoin-2-months", "stacked-isotretinoin-fitzpatrick-v", "no-scar", "keloid-history"):
        cards = post.post(
            f"{base}/cds-services/{TREATMENT}", json=load_json(FIXTURES / "requests" / f"{name}.json"), timeout=30
        ).json()["cards"]
        items = [_acted(card) for card in cards]
        if items:
            assert (
                post.post(f"{base}/cds-services/{TREATMENT}/feedback", json={"feedback": items}, timeout=30).status_code
                == 200
            )
    answer = post.post(
        f"{base}/cds-services/acne-scar-order-sign",
        timeout=30,
        json=load_json(FIXTURES / "orders" / "ablative-after-isotretinoin.json"),
    )
    assert answer.json() == {"cards": []}


def _acted(card: dict[str, Any]) -> dict[str, Any]:
    """The plan accepted with its first suggestion; every warning overridden with its first reason."""
    item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": "2026-11-26T10:00:00Z"}
    if card.get("suggestions"):
        return {**item, "outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    return {**item, "outcome": "overridden", "overrideReason": {"reason": card["overrideReasons"][0]}}


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield create_app(dataclasses.replace(settings, cards_mode=CardsMode("live", (("acne-scar-order-sign", "silent"),))))


@needs_chromium
def test_the_dashboard_shows_a_feedback_run_in_the_browser(live_app: str, tmp_path: Path) -> None:
    feedback_run(live_app)
    dom, seen = open_in_chromium(f"{live_app}/feedback-report", tmp_path)

    assert "<h1>Feedback dashboard</h1>" in dom
    assert dom.count('<svg class="chart"') >= 6
    # fired per 100 calls, live and silent: 2 of 4 patient-view calls had the isotretinoin warning
    assert "isotretinoin-recent (live)</text>" in dom and "50 per 100 (2 of 4 calls)" in dom
    assert "order-isotretinoin-recent (silent)</text>" in dom and "100 per 100 (1 of 1 calls)" in dom
    assert "treatment-plan-ice-pick: acceptance by week" in dom and "100% (n=3)" in dom
    assert "No such procedure is planned</text>" in dom  # the reason as clinicians read it
    assert "punch-excision</text>" in dom and "1 of 2 (50%)" in dom  # offered twice, taken once
    assert f"{live_app}/feedback-report" in {r["url"] for r in seen}
    assert {r["url"] for r in seen if not r["url"].startswith(live_app + "/")} == set(), "the page left the service"


def test_json_stays_the_default_and_a_browser_gets_the_dashboard(client: FlaskClient) -> None:
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        response = client.get("/feedback-report", headers={"Accept": accept} if accept else {})
        assert response.mimetype == "application/json" and "calls" in response.get_json()
        assert response.headers["Vary"] == "Accept"
    page = client.get("/feedback-report", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.mimetype == "text/html" and page.headers["Vary"] == "Accept"
    html = page.get_data(as_text=True)
    assert "No hook call recorded yet." in html and "<script" not in html and "http" not in html.split("<body>")[1]
    response_validator(
        yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")), "/feedback-report", "get", 200, "text/html"
    )  # documented


def test_the_dashboard_narrows_to_one_service(live_app: str) -> None:
    feedback_run(live_app)
    page = requests.get(
        f"{live_app}/feedback-report?service=acne-scar-order-sign", headers={"Accept": BROWSER_ACCEPT}, timeout=30
    ).text
    assert "order-isotretinoin-recent (silent)" in page and "isotretinoin-recent (live)" not in page
    assert "(service acne-scar-order-sign)" in page


def test_what_the_store_holds_is_escaped_never_markup(app: Flask, client: FlaskClient) -> None:
    """Card ids come from the database: whatever one holds is shown as text."""
    app.extensions["cds_store"].record_issued(
        TREATMENT, "h-1", [RenderedCard('<script>alert("x")</script>', {"uuid": "c-1"})]
    )
    html = client.get("/feedback-report", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "<script" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
