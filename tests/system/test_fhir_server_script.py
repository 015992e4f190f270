"""scripts/fhir_server.py as the README uses it: start, restart, serve without a token.

Real sekmet processes on loopback; each test stops what it started.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts.fhir_server import FhirServer, free_port, start
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration
SCRIPT = [sys.executable, str(ROOT / "scripts" / "fhir_server.py")]
PATIENT = ROOT / "fixtures" / "patients" / "isotretinoin-2-months.json"


def test_a_restart_right_after_stopping_gets_the_same_port(tmp_path: Path) -> None:
    """A client's kept-alive connection leaves the server's side in TIME_WAIT when the server
    stops; that is not "port in use" (uvicorn binds with SO_REUSEADDR, and so does the check)."""
    first = start(0, tmp_path / "first", "t")
    with requests.Session() as client:
        assert client.get(f"{first.base_url}/metadata", timeout=10).status_code == 200
        first.stop()
    second = start(first.port, tmp_path / "second", "t")
    try:
        assert second.request("GET", "metadata", token=None)[0] == 200
    finally:
        second.stop()


def test_without_a_token_every_call_is_answered(tmp_path: Path) -> None:
    """--no-token: what an unlaunched CDS Hooks sandbox needs (it sends no Authorization)."""
    server = start(0, tmp_path, None)
    try:
        assert server.request("GET", "Patient", token=None)[0] == 200
    finally:
        server.stop()


def test_with_a_token_a_call_without_it_is_refused(tmp_path: Path) -> None:
    server: FhirServer = start(0, tmp_path, "t")
    try:
        assert server.request("GET", "Patient", token=None)[0] == 401
        assert server.request("GET", "Patient")[0] == 200
    finally:
        server.stop()


def test_start_returns_with_the_bundle_loaded_and_stop_ends_it(tmp_path: Path) -> None:
    port = free_port()
    workdir = ["--port", str(port), "--workdir", str(tmp_path)]
    started = subprocess.run(
        [*SCRIPT, "start", *workdir, "--no-token", "--load", str(PATIENT)], capture_output=True, text=True, timeout=300
    )
    try:
        assert started.returncode == 0, started.stderr
        # no waiting here: start returned, so the patient is there
        read = requests.get(f"http://127.0.0.1:{port}/fhir/Patient/isotretinoin-2-months", timeout=10)
        assert read.status_code == 200
        again = subprocess.run([*SCRIPT, "start", *workdir], capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "still running" in again.stderr
    finally:
        stopped = subprocess.run([*SCRIPT, "stop", *workdir], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=5)
