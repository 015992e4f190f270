"""The tiers, and what every tier shares: the engine, and a real PostgreSQL.

tests/cards (the clinical core; never imports `service`), tests/service (the adapter through its
app, in-process) and tests/system (gunicorn, PostgreSQL, the FHIR server, fuzzing, deploy, the
browser, the repository itself) are marked `cards`, `service` and `system` by their folder.
`make test-fast` runs the first two (`-m "not system"`: a service test on PostgreSQL is marked
`system` too); `make test` runs everything.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cards.engine import Engine
from scripts.postgres import Postgres, start

TESTS = Path(__file__).resolve().parent
TIERS = ("cards", "service", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier in TIERS:
            item.add_marker(tier)


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.load()


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.system)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each feedback test runs on the embedded SQLite and on a real PostgreSQL (system tier)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/feedback.sqlite3"
    return empty_database(request.getfixturevalue("postgres").url)
