"""The feedback store: which cards were issued, and what clinicians did with them.

SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL (`DATABASE_URL`).
The schema is managed by Alembic (`service/migrations`). What is stored: card and suggestion
uuids, the catalogue card id, service id, hookInstance, times, outcomes and override codes, the
cards' mode (live, or silent: recorded, never sent) and the number of hook calls per service and
day — never patient identifiers, never tokens. Clinicians' free-text comments only when
FEEDBACK_KEEP_COMMENTS is on (they may name a patient).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from cards.render import RenderedCard

log = logging.getLogger("acne_scar_cds")

metadata = sa.MetaData()
MIGRATIONS = Path(__file__).parent / "migrations"

issued_cards = sa.Table(
    "issued_cards",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("service_id", sa.String(64), nullable=False, index=True),
    sa.Column("card_id", sa.String(64), nullable=False),
    sa.Column("hook_instance", sa.String(36), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    # CARDS_MODE (migration 0003): "live", sent to the EHR; "silent", recorded and never sent.
    sa.Column("mode", sa.String(8), nullable=False, server_default="live"),
)
# Successful hook calls per service, mode and day (UTC): the denominator of "fires per 100 calls".
hook_calls = sa.Table(
    "hook_calls",
    metadata,
    sa.Column("service_id", sa.String(64), primary_key=True),
    sa.Column("mode", sa.String(8), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
)
issued_suggestions = sa.Table(
    "issued_suggestions",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("card_uuid", sa.String(36), sa.ForeignKey("issued_cards.uuid"), nullable=False, index=True),
    sa.Column("suggestion_key", sa.String(64), nullable=False),
)
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("card_uuid", sa.String(36), sa.ForeignKey("issued_cards.uuid"), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Column("override_system", sa.String(255)),
    sa.Column("override_code", sa.String(64)),
    sa.Column("user_comment", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # CDS clients may send the same feedback twice: store it once.
    sa.UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_once"),
)
accepted_suggestions = sa.Table(
    "accepted_suggestions",
    metadata,
    sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id"), primary_key=True),
    sa.Column("suggestion_uuid", sa.String(36), sa.ForeignKey("issued_suggestions.uuid"), primary_key=True),
)


# JWT ids seen within their tokens' lifetime (CDS Hooks §Trusting CDS Clients: no replay).
seen_tokens = sa.Table(
    "seen_tokens",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256(iss, jti): fixed width
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
PRE_PING = True  # a connection dropped by a database restart is replaced, not failed on
PURGE_EVERY = 64  # delete expired token ids on about one insert in this many
# Built once: a statement made per call costs more than the round trip it sends.
INSERT_TOKEN = seen_tokens.insert()
INSERT_CARD = issued_cards.insert()
INSERT_SUGGESTION = issued_suggestions.insert()
# SQLite: one more hook call of a service, mode and day (an upsert), built once.
COUNT_CALL_SQLITE = (
    sqlite.insert(hook_calls)
    .values(service_id=sa.bindparam("service_id"), mode=sa.bindparam("mode"), day=sa.bindparam("day"), calls=1)
    .on_conflict_do_update(index_elements=["service_id", "mode", "day"], set_={"calls": hook_calls.c.calls + 1})
)


@dataclass(frozen=True)
class DriverInsert:
    """An INSERT compiled once by SQLAlchemy for SQLite and run on the driver's own cursor, with
    the values converted the way SQLAlchemy stores them: the record of a call's cards is on every
    hook call, and SQLAlchemy's execution layer cost more than SQLite's write (issue 18)."""

    sql: str
    fixed: dict[str, Any]  # values the statement itself binds (the upsert's 1s)
    convert: dict[str, Any]  # column -> SQLAlchemy's bind processor for SQLite

    @classmethod
    def of(cls, statement: Any, table: sa.Table) -> DriverInsert:
        dialect = sqlite.dialect(paramstyle="named")
        compiled = statement.compile(dialect=dialect)
        processors = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns}
        fixed = {k: v for k, v in compiled.params.items() if v is not None}
        return cls(str(compiled), fixed, {k: f for k, f in processors.items() if f is not None})

    def rows(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.fixed | {k: self.convert[k](v) if k in self.convert else v for k, v in r.items()} for r in rows]


SQLITE_COUNT_CALL = DriverInsert.of(COUNT_CALL_SQLITE, hook_calls)
SQLITE_INSERT_CARD = DriverInsert.of(INSERT_CARD, issued_cards)
SQLITE_INSERT_SUGGESTION = DriverInsert.of(INSERT_SUGGESTION, issued_suggestions)
# PostgreSQL: the call's count, a response's cards and their suggestions in one statement (a
# data-modifying CTE): one round trip instead of five, and as atomic as a transaction.
RECORD_ISSUED_POSTGRESQL = sa.text("""
WITH calls AS (
    INSERT INTO hook_calls (service_id, mode, day, calls) VALUES (:service_id, :mode, :day, 1)
    ON CONFLICT (service_id, mode, day) DO UPDATE SET calls = hook_calls.calls + 1
), cards AS (
    INSERT INTO issued_cards (uuid, service_id, card_id, hook_instance, issued_at, mode)
    SELECT card.uuid, :service_id, card.card_id, :hook_instance, :issued_at, :mode
    FROM unnest(CAST(:card_uuids AS varchar[]), CAST(:card_ids AS varchar[])) AS card(uuid, card_id)
)
INSERT INTO issued_suggestions (uuid, card_uuid, suggestion_key)
SELECT * FROM unnest(CAST(:suggestion_uuids AS varchar[]), CAST(:suggestion_cards AS varchar[]),
                     CAST(:suggestion_keys AS varchar[]))
""")


@dataclass(frozen=True)
class IssuedCard:
    """A card this service issued: what feedback about it is checked against."""

    uuid: str
    service_id: str
    card_id: str
    suggestion_uuids: frozenset[str]


@dataclass(frozen=True)
class FeedbackItem:
    """One validated feedback item, ready to store."""

    card_uuid: str
    outcome: str
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_system: str | None = None
    override_code: str | None = None
    user_comment: str | None = None


def create_engine(url: str, connect_args: dict[str, Any] | None = None) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # A file database has no connection a server restart could drop: no ping before each use
    # (on SQLite it cost a fifth of the issued-card write).
    pre_ping = PRE_PING and not url.startswith("sqlite")
    engine = sa.create_engine(url, pool_pre_ping=pre_ping, connect_args=connect_args or {})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across process crashes
    cursor.execute("PRAGMA busy_timeout=10000")  # concurrent workers wait instead of failing
    cursor.execute("PRAGMA foreign_keys=ON")
    # Checkpoints move the WAL into the database and wait for the disk: on a request's commit one
    # took 10-50 ms, every request's p99 (issue 18). They run in the background (Store).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


CHECKPOINT_SECONDS = 1.0


def _checkpoints(engine_ref: weakref.ref[sa.Engine]) -> None:
    """Move SQLite's WAL into the database every CHECKPOINT_SECONDS, off the request path
    (PASSIVE: never waits for, nor blocks, the workers' reads and writes). Ends with its engine,
    or at the first failure (logged; the next write starts another)."""
    while (engine := engine_ref()) is not None:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except sa.exc.SQLAlchemyError as exc:
            log.warning("SQLite checkpoint failed: %s", type(exc).__name__)
            return
        del engine
        time.sleep(CHECKPOINT_SECONDS)


class Store:
    """Issued cards and feedback, in one database shared by every worker and replica."""

    def __init__(self, engine: sa.Engine, relaxed: sa.Engine | None = None) -> None:
        self.engine = engine
        # Writes that need not wait for the disk: the replay cache and the record of issued
        # cards, where a database crash could lose the last few milliseconds (a token that
        # expires in minutes anyway; feedback on such a card is then refused with a clear 422).
        # Never feedback, which is acknowledged only once it is on disk. On PostgreSQL each of
        # these writes is one statement in autocommit: one round trip.
        self.relaxed = relaxed or engine
        self.relaxed_autocommit = self.relaxed.execution_options(isolation_level="AUTOCOMMIT")
        self._checkpointer: tuple[int, threading.Thread] | None = None

    def _checkpoint_in_background(self) -> None:
        """SQLite: the thread that checkpoints the WAL (`_checkpoints`), once per process (gunicorn
        forks its workers, and a thread does not survive a fork)."""
        if self.engine.dialect.name != "sqlite":
            return
        running = self._checkpointer
        if running is None or running[0] != os.getpid() or not running[1].is_alive():
            thread = threading.Thread(
                target=_checkpoints, args=(weakref.ref(self.engine),), name="sqlite-checkpoint", daemon=True
            )
            thread.start()
            self._checkpointer = (os.getpid(), thread)

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = create_engine(url)
        if engine.dialect.name != "postgresql":
            return cls(engine)
        return cls(engine, create_engine(url, {"options": "-c synchronous_commit=off"}))

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (a no-op when it is there)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        """Raise when the database cannot be reached (readiness)."""
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def remember_token(self, iss: str, jti: str, expires: int) -> bool:
        """Record a token id until `expires` (epoch seconds); False when it was seen before."""
        self._checkpoint_in_background()
        key = hashlib.sha256(f"{iss}\0{jti}".encode()).hexdigest()
        now = datetime.now(UTC)
        try:
            with self.relaxed_autocommit.connect() as connection:
                connection.execute(INSERT_TOKEN, {"key": key, "expires_at": datetime.fromtimestamp(expires, UTC)})
        except sa.exc.IntegrityError:
            return False
        if secrets.randbelow(PURGE_EVERY) == 0:
            with self.engine.begin() as connection:
                connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
        return True

    def record_issued(
        self,
        service_id: str,
        hook_instance: str,
        cards: Sequence[RenderedCard],
        at: datetime | None = None,
        mode: str = "live",
    ) -> None:
        """Count one hook call and remember its cards (sent, or in silent mode only evaluated),
        so feedback can be tied to the rule that fired and the report can say how often it fires."""
        self._checkpoint_in_background()
        at = at or datetime.now(UTC)
        day = at.astimezone(UTC).date()
        suggestions = [(uuid, c.card["uuid"], key) for c in cards for uuid, key in c.suggestion_keys.items()]
        if self.relaxed.dialect.name == "postgresql":
            with self.relaxed_autocommit.connect() as connection:
                connection.execute(
                    RECORD_ISSUED_POSTGRESQL,
                    {
                        "service_id": service_id,
                        "hook_instance": hook_instance,
                        "issued_at": at,
                        "mode": mode,
                        "day": day,
                        "card_uuids": [c.card["uuid"] for c in cards],
                        "card_ids": [c.card_id for c in cards],
                        "suggestion_uuids": [s[0] for s in suggestions],
                        "suggestion_cards": [s[1] for s in suggestions],
                        "suggestion_keys": [s[2] for s in suggestions],
                    },
                )
            return
        rows = [
            {
                "uuid": c.card["uuid"],
                "service_id": service_id,
                "card_id": c.card_id,
                "hook_instance": hook_instance,
                "issued_at": at,
                "mode": mode,
            }
            for c in cards
        ]
        suggestion_rows = [{"uuid": uuid, "card_uuid": card, "suggestion_key": key} for uuid, card, key in suggestions]
        count = {"service_id": service_id, "mode": mode, "day": day}
        driver = self.relaxed.raw_connection()  # from the pool, with the pragmas; one transaction
        try:
            cursor = driver.cursor()
            for insert, values in (
                (SQLITE_COUNT_CALL, [count]),
                (SQLITE_INSERT_CARD, rows),
                (SQLITE_INSERT_SUGGESTION, suggestion_rows),
            ):
                cursor.executemany(insert.sql, insert.rows(values))
            driver.commit()
        except Exception as exc:  # the driver's own errors, as SQLAlchemy's: callers catch those
            driver.rollback()
            raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
        finally:
            driver.close()  # back to the pool

    def issued(self, service_id: str, uuids: Iterable[str]) -> dict[str, IssuedCard]:
        """The cards among `uuids` that this service issued (sent: a silent card never reached
        a clinician, so feedback cannot be about it)."""
        wanted = sorted(set(uuids))
        query = sa.select(issued_cards.c.uuid, issued_cards.c.card_id).where(
            issued_cards.c.uuid.in_(wanted), issued_cards.c.service_id == service_id, issued_cards.c.mode == "live"
        )
        sugg = sa.select(issued_suggestions.c.card_uuid, issued_suggestions.c.uuid).where(
            issued_suggestions.c.card_uuid.in_(wanted)
        )
        with self.engine.connect() as connection:
            cards = connection.execute(query).all()
            suggestions = connection.execute(sugg).all()
        by_card: dict[str, set[str]] = {}
        for card_uuid, uuid in suggestions:
            by_card.setdefault(card_uuid, set()).add(uuid)
        return {u: IssuedCard(u, service_id, cid, frozenset(by_card.get(u, ()))) for u, cid in cards}

    def add_feedback(self, items: Sequence[FeedbackItem], at: datetime | None = None) -> int:
        """Store the items in one transaction; duplicates are skipped. Returns how many were new."""
        self._checkpoint_in_background()
        at = at or datetime.now(UTC)
        new = 0
        with self.engine.begin() as connection:
            for item in items:
                feedback_id = connection.execute(self._insert_once(item, at)).scalar()
                if feedback_id is None:
                    continue  # already stored: same card, outcome and time
                new += 1
                if item.accepted_suggestions:
                    connection.execute(
                        accepted_suggestions.insert(),
                        [
                            {"feedback_id": feedback_id, "suggestion_uuid": s}
                            for s in dict.fromkeys(item.accepted_suggestions)
                        ],
                    )
        return new

    def _insert_once(self, item: FeedbackItem, at: datetime) -> Any:
        values = {
            "card_uuid": item.card_uuid,
            "outcome": item.outcome,
            "outcome_timestamp": item.outcome_timestamp,
            "override_system": item.override_system,
            "override_code": item.override_code,
            "user_comment": item.user_comment,
            "received_at": at,
        }
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return (
            dialect.insert(feedback)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["card_uuid", "outcome", "outcome_timestamp"])
            .returning(feedback.c.id)
        )

    def report(self, service_id: str | None = None) -> dict[str, Any]:
        """Per card id: issued, accepted, overridden (each card by its latest outcome), acceptance
        rate, top override reasons; per suggestion: offered and accepted (each suggestion once,
        however often its acceptance was sent) — of the cards sent (live). Then, silent and live:
        hook calls per service, and per card how often it fired per 100 calls; and acceptance
        by the week the cards were issued."""
        with self.engine.connect() as connection:
            cards = _card_rows(connection, service_id)
            reasons = _reason_rows(connection, service_id)
            suggestions = _suggestion_rows(connection, service_id)
            calls = _call_rows(connection, service_id)
            firing = _firing_rows(connection, service_id)
            daily = _daily_rows(connection, service_id)
        totals = {(row.service_id, row.mode): row.calls for row in calls}
        return {
            "cards": [_card_entry(row, reasons) for row in cards],
            "suggestions": [_suggestion_entry(row) for row in suggestions],
            "calls": [{"service": row.service_id, "mode": row.mode, "calls": row.calls} for row in calls],
            "firing": [_firing_entry(row, totals) for row in firing],
            "acceptance_over_time": _weekly(daily),
        }


def _where_service(query: Any, service_id: str | None, table: sa.Table = issued_cards) -> Any:
    return query if service_id is None else query.where(table.c.service_id == service_id)


LIVE = issued_cards.c.mode == "live"  # feedback and suggestions: only cards a clinician saw


def _latest_feedback() -> Any:
    """Each card's latest feedback (by outcomeTimestamp, then arrival): what the clinician finally
    did. The CDS Hooks sandbox lets a clinician dismiss a card already accepted; the card counts
    once, as overridden."""
    rank = sa.func.row_number().over(
        partition_by=feedback.c.card_uuid, order_by=(feedback.c.outcome_timestamp.desc(), feedback.c.id.desc())
    )
    ranked = sa.select(
        feedback.c.card_uuid, feedback.c.outcome, feedback.c.override_code, rank.label("rank")
    ).subquery()
    return sa.select(ranked.c.card_uuid, ranked.c.outcome, ranked.c.override_code).where(ranked.c.rank == 1).subquery()


def _outcome_count(latest: Any, outcome: str) -> Any:
    return sa.func.count(sa.case((latest.c.outcome == outcome, latest.c.card_uuid)))


def _card_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    latest = _latest_feedback()
    query = (
        sa.select(
            issued_cards.c.service_id,
            issued_cards.c.card_id,
            sa.func.count(issued_cards.c.uuid).label("issued"),
            _outcome_count(latest, "accepted").label("accepted"),
            _outcome_count(latest, "overridden").label("overridden"),
        )
        .select_from(issued_cards.outerjoin(latest, latest.c.card_uuid == issued_cards.c.uuid))
        .where(LIVE)
        .group_by(issued_cards.c.service_id, issued_cards.c.card_id)
        .order_by(issued_cards.c.service_id, issued_cards.c.card_id)
    )
    return connection.execute(_where_service(query, service_id)).all()


def _reason_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    latest = _latest_feedback()
    query = (
        sa.select(
            issued_cards.c.service_id,
            issued_cards.c.card_id,
            latest.c.override_code,
            sa.func.count(latest.c.card_uuid).label("count"),
        )
        .select_from(latest.join(issued_cards, latest.c.card_uuid == issued_cards.c.uuid))
        .where(latest.c.outcome == "overridden", latest.c.override_code.is_not(None))
        .group_by(issued_cards.c.service_id, issued_cards.c.card_id, latest.c.override_code)
        .order_by(sa.desc("count"), latest.c.override_code)
    )
    return connection.execute(_where_service(query, service_id)).all()


def _suggestion_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    query = (
        sa.select(
            issued_cards.c.service_id,
            issued_cards.c.card_id,
            issued_suggestions.c.suggestion_key,
            sa.func.count(sa.distinct(issued_suggestions.c.uuid)).label("offered"),
            sa.func.count(sa.distinct(accepted_suggestions.c.suggestion_uuid)).label("accepted"),
        )
        .select_from(
            issued_suggestions.join(issued_cards, issued_suggestions.c.card_uuid == issued_cards.c.uuid).outerjoin(
                accepted_suggestions, accepted_suggestions.c.suggestion_uuid == issued_suggestions.c.uuid
            )
        )
        .where(LIVE)
        .group_by(issued_cards.c.service_id, issued_cards.c.card_id, issued_suggestions.c.suggestion_key)
        .order_by(issued_cards.c.service_id, issued_cards.c.card_id, issued_suggestions.c.suggestion_key)
    )
    return connection.execute(_where_service(query, service_id)).all()


def _call_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    query = (
        sa.select(hook_calls.c.service_id, hook_calls.c.mode, sa.func.sum(hook_calls.c.calls).label("calls"))
        .group_by(hook_calls.c.service_id, hook_calls.c.mode)
        .order_by(hook_calls.c.service_id, hook_calls.c.mode)
    )
    return connection.execute(_where_service(query, service_id, hook_calls)).all()


def _firing_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    """Per service, card and mode: cards issued, and in how many calls (an order card fires once
    per risky draft, so a call may carry several)."""
    query = (
        sa.select(
            issued_cards.c.service_id,
            issued_cards.c.card_id,
            issued_cards.c.mode,
            sa.func.count(issued_cards.c.uuid).label("issued"),
            sa.func.count(sa.distinct(issued_cards.c.hook_instance)).label("fired_in_calls"),
        )
        .group_by(issued_cards.c.service_id, issued_cards.c.card_id, issued_cards.c.mode)
        .order_by(issued_cards.c.service_id, issued_cards.c.card_id, issued_cards.c.mode)
    )
    return connection.execute(_where_service(query, service_id)).all()


def _issue_day(connection: sa.Connection) -> Any:
    """The UTC day a card was issued (PostgreSQL's date() would use the session's time zone)."""
    if connection.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", issued_cards.c.issued_at), sa.Date)
    return sa.func.date(issued_cards.c.issued_at)  # SQLite keeps the UTC time as text


def _daily_rows(connection: sa.Connection, service_id: str | None) -> Sequence[Any]:
    latest = _latest_feedback()
    day = _issue_day(connection).label("day")
    query = (
        sa.select(
            issued_cards.c.service_id,
            issued_cards.c.card_id,
            day,
            sa.func.count(issued_cards.c.uuid).label("issued"),
            _outcome_count(latest, "accepted").label("accepted"),
            _outcome_count(latest, "overridden").label("overridden"),
        )
        .select_from(issued_cards.outerjoin(latest, latest.c.card_uuid == issued_cards.c.uuid))
        .where(LIVE)
        .group_by(issued_cards.c.service_id, issued_cards.c.card_id, day)
    )
    return connection.execute(_where_service(query, service_id)).all()


def _weekly(daily: Sequence[Any]) -> list[dict[str, Any]]:
    """Daily rows summed by ISO week (the Monday that starts it), sorted by service, card, week."""
    weeks: dict[tuple[str, str, date], list[int]] = {}
    for row in daily:
        day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
        sums = weeks.setdefault((row.service_id, row.card_id, day - timedelta(days=day.weekday())), [0, 0, 0])
        sums[0] += row.issued
        sums[1] += row.accepted
        sums[2] += row.overridden
    return [
        {
            "service": service,
            "card": card,
            "week": week.isoformat(),
            "issued": issued,
            "accepted": accepted,
            "overridden": overridden,
            "acceptance_rate": _rate(accepted, accepted + overridden),
        }
        for (service, card, week), (issued, accepted, overridden) in sorted(weeks.items())
    ]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _firing_entry(row: Any, calls: dict[tuple[str, str], int]) -> dict[str, Any]:
    total = calls.get((row.service_id, row.mode), 0)
    # Calls are counted from migration 0003 on; cards issued before it have no denominator.
    per_100 = round(100 * row.fired_in_calls / total, 1) if total else None
    return {
        "service": row.service_id,
        "card": row.card_id,
        "mode": row.mode,
        "issued": row.issued,
        "fired_in_calls": row.fired_in_calls,
        "per_100_calls": per_100,
    }


def _card_entry(row: Any, reasons: Sequence[Any]) -> dict[str, Any]:
    top = [
        {"code": r.override_code, "count": r.count}
        for r in reasons
        if (r.service_id, r.card_id) == (row.service_id, row.card_id)
    ][:3]
    return {
        "service": row.service_id,
        "card": row.card_id,
        "issued": row.issued,
        "accepted": row.accepted,
        "overridden": row.overridden,
        # Of the cards a clinician acted on, the share accepted.
        "acceptance_rate": _rate(row.accepted, row.accepted + row.overridden),
        "top_override_reasons": top,
    }


def _suggestion_entry(row: Any) -> dict[str, Any]:
    return {
        "service": row.service_id,
        "card": row.card_id,
        "suggestion": row.suggestion_key,
        "offered": row.offered,
        "accepted": row.accepted,
        "take_rate": _rate(row.accepted, row.offered),
    }


__all__ = ["FeedbackItem", "IssuedCard", "Store"]
