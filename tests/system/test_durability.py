"""Feedback survives concurrency and crashes (issue: feedback durability), over real HTTP
against gunicorn with two workers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from cards.render import RenderedCard
from scripts.postgres import Postgres
from service.store import Store, feedback
from tests.support.fhir import icepick_scar
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.servers import Gunicorn, serving

CLIENTS = 8
ITEMS = 1000


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    yield from serving(tmp_path, DATABASE_URL=database_url, LOG_LEVEL="WARNING")


def card_uuid(base: str) -> str:
    cards = requests.post(base + SERVICE_URL, json=hook_request(icepick_scar()), timeout=10).json()["cards"]
    return str(cards[0]["uuid"])


def item(card: str, n: int) -> dict[str, str]:
    """Item n: overridden at a distinct second, so each is a different piece of feedback."""
    return {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": f"2026-11-26T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
    }


def post_all(base: str, card: str, numbers: list[int], acked: list[int], stop: threading.Event) -> None:
    with requests.Session() as session:
        for n in numbers:
            if stop.is_set():
                return
            try:
                response = session.post(f"{base}{SERVICE_URL}/feedback", json={"feedback": [item(card, n)]}, timeout=10)
            except requests.RequestException:
                return  # the server was killed mid-request: that item was never acknowledged
            if response.status_code == 200:
                acked.append(n)


def run_clients(base: str, card: str, stop: threading.Event) -> tuple[list[threading.Thread], list[int]]:
    acked: list[int] = []
    threads = [
        threading.Thread(target=post_all, args=(base, card, list(range(i, ITEMS, CLIENTS)), acked, stop))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    return threads, acked


def stored_seconds(database_url: str) -> list[str]:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(feedback.c.outcome_timestamp)).scalars().all()
    engine.dispose()
    return [str(r)[11:19] for r in rows]


def test_eight_concurrent_clients_store_exactly_a_thousand(server: Gunicorn, database_url: str) -> None:
    card = card_uuid(server.base)
    threads, acked = run_clients(server.base, card, threading.Event())
    for thread in threads:
        thread.join(120)
    assert len(acked) == ITEMS
    report = requests.get(server.base + "/feedback-report", timeout=10).json()
    assert len(stored_seconds(database_url)) == ITEMS
    plan = next(c for c in report["cards"] if c["card"] == "treatment-plan-ice-pick")
    assert plan["overridden"] == 1  # one card, overridden (a thousand times over)


def test_sigkill_mid_load_loses_no_acknowledged_item(server: Gunicorn, database_url: str) -> None:
    card = card_uuid(server.base)
    stop = threading.Event()
    threads, acked = run_clients(server.base, card, stop)
    while len(acked) < 200 and any(t.is_alive() for t in threads):
        threading.Event().wait(0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    stored = set(stored_seconds(database_url))
    acknowledged = {str(item(card, n)["outcomeTimestamp"])[11:19] for n in acked}
    assert len(acknowledged) >= 200
    assert acknowledged <= stored


def test_on_postgresql_only_feedback_waits_for_the_disk(postgres: Postgres) -> None:
    """A PostgreSQL crash (not only a service crash) must not lose acknowledged feedback, so its
    commits wait for the disk; the replay cache and the record of issued cards do not (a crash
    loses their last milliseconds: tokens that expire in minutes, feedback then refused 422)."""
    store = Store.from_url(postgres.url)
    with store.engine.connect() as connection:
        assert connection.scalar(sa.text("SHOW synchronous_commit")) == "on"
    for engine in (store.relaxed, store.relaxed_autocommit):
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SHOW synchronous_commit")) == "off"


def test_the_cards_of_one_response_are_stored_whole_or_not_at_all(database_url: str) -> None:
    """Feedback is checked against the stored cards and suggestions: a response is recorded as
    one unit (PostgreSQL: one statement; SQLite: one transaction), so feedback never finds a
    card without the suggestions it offered."""
    store = Store.from_url(database_url)
    store.migrate()
    plain, with_one, clash = (str(uuid.uuid4()) for _ in range(3))
    store.record_issued(
        "svc",
        "hook-1",
        [RenderedCard("plan", {"uuid": plain}), RenderedCard("warning", {"uuid": with_one}, {clash: "retinoid"})],
    )
    assert store.issued("svc", [plain])[plain].suggestion_uuids == frozenset()
    assert store.issued("svc", [with_one])[with_one].suggestion_uuids == {clash}
    later = str(uuid.uuid4())
    with pytest.raises(sa.exc.IntegrityError):  # the suggestion id is taken: nothing is stored
        store.record_issued("svc", "hook-2", [RenderedCard("plan", {"uuid": later}, {clash: "punch"})])
    assert store.issued("svc", [later]) == {}


def test_sqlite_moves_its_log_into_the_database_off_the_request_path(tmp_path: Path) -> None:
    """A checkpoint waits for the disk (10-50 ms here): the writes of a hook call never run one
    (wal_autocheckpoint=0) and a background thread does, so the log does not grow for ever and
    no call's answer waits for it."""
    path = tmp_path / "store.sqlite3"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    before = path.stat().st_size
    cards = [str(uuid.uuid4()) for _ in range(300)]
    for n, card in enumerate(cards):
        store.record_issued("svc", f"hook-{n}", [RenderedCard("plan", {"uuid": card}, {str(uuid.uuid4()): "punch"})])
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.stat().st_size > before, "the records never left the write-ahead log"
    assert store.issued("svc", cards).keys() == set(cards)
