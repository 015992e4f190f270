"""The clinical scenarios (tests/scenarios/*.yaml) over HTTP and through the CLI: the fixture's
patient-view request posted to the service, and `acne-scar-cds evaluate` on its Bundle, give
what the scenario expects, the same cards as the engine (tests/cards/test_scenarios.py). Over
HTTP a card does not carry its catalogue id, so it is recognised by its summary (the catalogue's
summary template) and indicator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from cards.engine import Engine
from tests.support.hooks import SERVICE_URL
from tests.support.paths import FIXTURE_TODAY, load_json
from tests.support.scenarios import PATIENTS, REQUESTS, check, engine_cards, identify, params


@pytest.mark.parametrize("scenario", params())
def test_scenario_http(scenario: dict[str, Any], engine: Engine, client: FlaskClient) -> None:
    """The service over HTTP: the fixture's patient-view request, prefetch filled."""
    assert scenario["today"] == FIXTURE_TODAY, "the test client runs with today = 2026-11-26"
    response = client.post(SERVICE_URL, json=load_json(REQUESTS / f"{scenario['fixture']}.json"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"cards"}
    cards = [(identify(card, engine), card) for card in body["cards"]]
    patient_id, direct = engine_cards(engine, scenario)
    check(scenario, cards, patient_id)
    # The prefetch path must reach the same conclusions as the engine given the whole record.
    assert [(c["indicator"], c["summary"]) for _, c in cards] == [(c["indicator"], c["summary"]) for _, c in direct]


@pytest.mark.parametrize("scenario", params())
def test_scenario_cli(scenario: dict[str, Any], engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewers' command line (`acne-scar-cds evaluate <bundle> --json`) on the fixture gives
    what the scenario expects, the same cards as the engine."""
    from service.cli import main

    path = PATIENTS / f"{scenario['fixture']}.json"
    assert main(["evaluate", str(path), "--today", scenario["today"].isoformat(), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    cards = [(identify(card, engine), card) for card in body["cards"]]
    patient_id, direct = engine_cards(engine, scenario)
    check(scenario, cards, patient_id)
    assert [c["summary"] for _, c in cards] == [c["summary"] for _, c in direct]


def test_request_without_prefetch_or_server_is_412(client: FlaskClient) -> None:
    """fixtures/requests/no-prefetch.json (the README's 412 example): nothing to read the
    patient's data from, so the service says which data it could not obtain."""
    response = client.post(SERVICE_URL, json=load_json(REQUESTS / "no-prefetch.json"))
    assert response.status_code == 412
    body = response.get_json()
    assert "cards" not in body
    assert {m["key"] for m in body["missing"]} == set(load_json(REQUESTS / "icepick-moderate.json")["prefetch"])
