"""What an operator reads: JSON lines with UTC times from gunicorn and the app alike (how many
workers: tests/service/test_workers.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import requests

from tests.support.servers import gunicorn


def test_every_line_gunicorn_and_the_app_write_is_json_with_a_utc_time(tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with gunicorn({"DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3", "WEB_CONCURRENCY": "1"}, log) as server:
        requests.get(server.base + "/cds-services", timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # raises on a plain-text line
    events = {line["event"] for line in lines}
    assert {"Listening at: " + server.base + f" ({server.process.pid})", "request", "Shutting down: Master"} <= events
    for line in lines:
        when = datetime.fromisoformat(line["time"])
        offset = when.utcoffset()
        assert offset is not None and offset.total_seconds() == 0, line["time"]
        assert abs((datetime.now(UTC) - when).total_seconds()) < 300
