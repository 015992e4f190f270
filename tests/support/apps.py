"""The app built with test settings, its client, and the app on a loopback port. The service's
and the system's conftest import these fixtures; the core's tests never load the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from cards.engine import Engine
from service.app import create_app
from service.settings import Settings
from tests.support.paths import FIXTURE_TODAY
from tests.support.servers import serving_in_a_thread


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        today=FIXTURE_TODAY,
        fhir_connect_timeout=0.5,
        fhir_read_timeout=1.0,
        fhir_fetch_budget=2.0,
        database_url=f"sqlite:///{tmp_path}/cds.sqlite3",
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[Flask]:
    yield create_app(settings, engine=engine)  # the session's engine: the content is loaded once


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_app(app: Flask) -> Iterator[str]:
    """The app on a loopback port, for a real client (a browser, a health check): its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving_in_a_thread(server):
        yield f"http://127.0.0.1:{server.server_port}"
