"""Shared test fixtures: the app built with test settings, its client, the engine, fixtures."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from cards.engine import Engine
from scripts.postgres import Postgres, start
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
def settings(tmp_path: Path) -> Settings:
    return Settings(today=FIXTURE_TODAY, fhir_connect_timeout=0.5, fhir_read_timeout=1.0,
                    fhir_fetch_budget=2.0, database_url=f"sqlite:///{tmp_path}/cds.sqlite3")


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_app(app: Flask) -> Iterator[str]:
    """The app on a loopback port, for a real client (a browser, a health check): its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL on loopback for the whole session (started on first use)."""
    workdir = Path(tempfile.mkdtemp(prefix="acne-scar-cds-pg-"))
    server = start(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def empty_database(url: str) -> str:
    """Drop every table so the app's migrations start from nothing; returns the url."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each feedback test runs on the embedded SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/feedback.sqlite3"
    return empty_database(request.getfixturevalue("postgres").url)
