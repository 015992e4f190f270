"""Silent mode (CARDS_MODE, README "Going live safely"): a service evaluates and records every card
it would have issued, marked silent, and answers `{"cards": []}`; the feedback report tells silent
from live, counts hook calls, and the store never holds a patient identifier.

Over HTTP (the app on a loopback port), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from service.app import create_app
from service.settings import CardsMode, Settings, SettingsError
from service.store import metadata
from tests.support.paths import FIXTURES, ROOT, load_json

TREATMENT, ORDER_SIGN = "acne-scar-treatment", "acne-scar-order-sign"
# The pilot: patient-view silent, the order check live.
PILOT = CardsMode("live", ((TREATMENT, "silent"),))


@pytest.fixture
def app(settings: Settings, database_url: str) -> Iterator[Flask]:
    """The app of `live_app`: patient-view silent, order-sign live, on each database."""
    yield create_app(dataclasses.replace(settings, database_url=database_url, cards_mode=PILOT))


def call(base: str, service: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{base}/cds-services/{service}", json=body, timeout=30)


def table_rows(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the store."""
    with app.extensions["cds_store"].engine.connect() as connection:
        return {
            name: [dict(r._mapping) for r in connection.execute(sa.select(table))]
            for name, table in metadata.tables.items()
        }


def test_a_silent_service_records_its_cards_and_answers_none(live_app: str, app: Flask) -> None:
    answer = call(live_app, TREATMENT, load_json(FIXTURES / "requests" / "isotretinoin-2-months.json"))
    assert answer.status_code == 200
    assert answer.json() == {"cards": []}

    silent = [r for r in table_rows(app)["issued_cards"] if r["mode"] == "silent"]
    assert sorted(r["card_id"] for r in silent) == ["isotretinoin-recent", "treatment-plan-ice-pick"]
    report = requests.get(f"{live_app}/feedback-report", timeout=30).json()
    assert report["cards"] == [] and report["suggestions"] == []  # nothing reached a clinician
    assert report["calls"] == [{"service": TREATMENT, "mode": "silent", "calls": 1}]
    assert {(f["card"], f["mode"], f["per_100_calls"]) for f in report["firing"]} == {
        ("isotretinoin-recent", "silent", 100.0),
        ("treatment-plan-ice-pick", "silent", 100.0),
    }


def test_a_live_service_beside_it_sends_its_cards_and_the_report_tells_them_apart(live_app: str) -> None:
    call(live_app, TREATMENT, load_json(FIXTURES / "requests" / "isotretinoin-2-months.json"))
    call(live_app, TREATMENT, load_json(FIXTURES / "requests" / "no-scar.json"))  # a call with no card
    answer = call(live_app, ORDER_SIGN, load_json(FIXTURES / "orders" / "ablative-after-isotretinoin.json"))
    sent = [c["summary"] for c in answer.json()["cards"]]
    assert len(sent) == 4 and all("2027-03-26" in s for s in sent[:3])

    report = requests.get(f"{live_app}/feedback-report", timeout=30).json()
    assert report["calls"] == [
        {"service": ORDER_SIGN, "mode": "live", "calls": 1},
        {"service": TREATMENT, "mode": "silent", "calls": 2},
    ]
    firing = {(f["service"], f["card"]): f for f in report["firing"]}
    # One call in two had isotretinoin: 50 per 100 calls, silent.
    assert firing[TREATMENT, "isotretinoin-recent"] == {
        "service": TREATMENT,
        "card": "isotretinoin-recent",
        "mode": "silent",
        "issued": 1,
        "fired_in_calls": 1,
        "per_100_calls": 50.0,
    }
    # One warning per risky draft: three cards, one call.
    ablative = firing[ORDER_SIGN, "order-isotretinoin-recent"]
    assert (ablative["mode"], ablative["issued"], ablative["fired_in_calls"], ablative["per_100_calls"]) == (
        "live",
        3,
        1,
        100.0,
    )
    assert {c["card"] for c in report["cards"]} == {"order-isotretinoin-recent", "order-resurfacing-prophylaxis"}


def test_feedback_cannot_name_a_silent_card(live_app: str, app: Flask) -> None:
    """No clinician saw it; a uuid that reaches the EHR anyway is refused like any unknown card."""
    call(live_app, TREATMENT, load_json(FIXTURES / "requests" / "isotretinoin-2-months.json"))
    uuid = next(r["uuid"] for r in table_rows(app)["issued_cards"] if r["card_id"] == "isotretinoin-recent")
    item = {"card": uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}
    refused = requests.post(f"{live_app}/cds-services/{TREATMENT}/feedback", json={"feedback": [item]}, timeout=30)
    assert refused.status_code == 422 and refused.json()["error"] == "unknown-card"


def test_the_store_holds_no_patient_identifier_in_either_mode(live_app: str, app: Flask) -> None:
    bodies = [
        (TREATMENT, load_json(FIXTURES / "requests" / "pregnant-on-isotretinoin.json")),
        ("acne-scar-order-select", load_json(FIXTURES / "orders" / "retinoid-pregnant.json")),
    ]
    for service, body in bodies:
        assert call(live_app, service, body).status_code == 200
    stored = json.dumps(table_rows(app), default=str)
    for _, body in bodies:
        patient = body["context"]["patientId"]
        resources = [
            e["resource"]
            for value in body["prefetch"].values()
            if isinstance(value, dict)
            for e in value.get("entry", [])
        ] + [body["prefetch"].get("patient") or {}]
        people = [r for r in resources if r.get("resourceType") == "Patient"]
        names = [n["family"] for r in people for n in r.get("name", [])]
        numbers = [i["value"] for r in people for i in r.get("identifier", [])]
        births = [r["birthDate"] for r in people]
        assert names and numbers and births
        for identifier in [patient, *names, *numbers, *births]:
            assert identifier not in stored


def test_the_request_log_says_how_many_cards_were_kept_back(live_app: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="acne_scar_cds")
    call(live_app, TREATMENT, load_json(FIXTURES / "requests" / "isotretinoin-2-months.json"))
    line = next(r for r in caplog.records if getattr(r, "endpoint", "") == "/cds-services/<service_id>")
    assert (line.cards, line.silent) == (0, 2)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value, mode",
    [
        ("silent", CardsMode("silent")),
        ("acne-scar-order-sign=silent", CardsMode("live", ((ORDER_SIGN, "silent"),))),
        ("Silent, acne-scar-treatment=live", CardsMode("silent", ((TREATMENT, "live"),))),
    ],
)
def test_cards_mode_for_every_service_or_per_service(value: str, mode: CardsMode) -> None:
    assert Settings.from_env({"CARDS_MODE": value}).cards_mode == mode
    assert Settings().cards_mode.of(TREATMENT) == "live"  # the default


@pytest.mark.parametrize(
    "value",
    ["loud", "live,silent", "acne-scar-treatment=on", "=silent", "acne-scar-treatment=silent,acne-scar-treatment=live"],
)
def test_a_cards_mode_that_cannot_be_read_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="CARDS_MODE"):
        Settings.from_env({"CARDS_MODE": value})


def test_a_misspelt_service_in_cards_mode_stops_the_start(settings: Settings) -> None:
    """It would leave that service live: refused by the app and, in one line, by gunicorn's master."""
    typo = CardsMode("live", (("acne-scar-treatmnet", "silent"),))
    with pytest.raises(SettingsError, match="acne-scar-treatmnet"):
        create_app(dataclasses.replace(settings, cards_mode=typo))
    env = {**os.environ, "CARDS_MODE": "acne-scar-treatmnet=silent", "DATABASE_URL": settings.database_url}
    done = subprocess.run(
        [sys.executable, "-c", "from service.gunicorn_conf import checked_settings; checked_settings()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "acne-scar-cds: cannot start: CARDS_MODE names no service 'acne-scar-treatmnet'; the services are "
        "acne-scar-treatment, acne-scar-order-select, acne-scar-order-sign"
    ]
