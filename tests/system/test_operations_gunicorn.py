"""Operations under a real gunicorn: metrics add up across workers, and SIGTERM lets an in-flight
call finish (tests/service/test_operations.py has the logs, metrics and health of one app)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.fhir import icepick_scar, isotretinoin_statement, searchset
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.prometheus import metric
from tests.support.servers import gunicorn


def test_metrics_add_up_across_gunicorn_workers(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3", "WEB_CONCURRENCY": "2", "LOG_LEVEL": "WARNING"}
    with gunicorn(env, tmp_path / "gunicorn.log") as server, requests.Session() as session:
        for _ in range(20):
            session.get(server.base + "/cds-services", timeout=5, headers={"Connection": "close"})
        text = requests.get(server.base + "/metrics", timeout=5).text
        pids = set(re.findall(r"Booting worker with pid: (\d+)", server.log.read_text()))
    assert metric(text, "cds_requests_total", endpoint="/cds-services", status="200") == 20
    assert len(pids) == 2


def test_sigterm_lets_an_in_flight_call_finish(tmp_path: Path) -> None:
    """Graceful shutdown: a call waiting on a slow FHIR server still gets its answer."""
    fhir = HTTPServer(threaded=True)
    fhir.start()

    def slow(request: Request) -> Response:
        time.sleep(0.8)
        return Response(json.dumps(searchset(isotretinoin_statement())), content_type="application/fhir+json")

    fhir.expect_request("/fhir/MedicationStatement").respond_with_handler(slow)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/g.sqlite3", "WEB_CONCURRENCY": "1", "CDS_TODAY": "2026-11-26"}
    answers: list[int] = []
    try:
        with gunicorn(env, tmp_path / "gunicorn.log") as server:
            body = hook_request(icepick_scar(), omit=("medicationStatements",), fhirServer=fhir.url_for("/fhir"))
            call = threading.Thread(
                target=lambda: answers.append(
                    requests.post(server.base + SERVICE_URL, json=body, timeout=10).status_code
                )
            )
            call.start()
            time.sleep(0.3)  # the call is now waiting on the FHIR server
            os.killpg(server.process.pid, signal.SIGTERM)
            call.join(10)
            assert server.process.wait(15) == 0
    finally:
        fhir.clear()
        fhir.stop()
    assert answers == [200]
