"""Shared test fixtures: the app built with test settings, its client, the engine, fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cards.engine import Engine
from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
# The date every fixture is written against (fixtures/README.md).
FIXTURE_TODAY = date(2026, 11, 26)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.load()


@pytest.fixture
def settings() -> Settings:
    return Settings(today=FIXTURE_TODAY, fhir_connect_timeout=0.5, fhir_read_timeout=1.0,
                    fhir_fetch_budget=2.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
