"""What an operator reads and sizes: JSON lines with UTC times from gunicorn and the app alike,
and as many workers as the CPUs the process may really use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from service.workers import available_cpus, cpu_quota
from tests.servers import ROOT, gunicorn


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


def run_with_cpus(cpus: set[int], code: str) -> str:
    """`code`'s output in a fresh interpreter pinned to `cpus` (as taskset or --cpuset-cpus do)."""
    pinned = f"import os; os.sched_setaffinity(0, {cpus!r}); {code}"
    return subprocess.run([sys.executable, "-c", pinned], cwd=ROOT, capture_output=True, text=True,
                          check=True, env={k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}).stdout


def test_workers_follow_the_cpus_the_process_may_use() -> None:
    config = "import runpy; print(runpy.run_path('service/gunicorn_conf.py')['workers'])"
    assert run_with_cpus({0}, config).strip() == "3"


@pytest.mark.parametrize("files, cpus", [
    ({"cpu.max": "150000 100000\n"}, 1.5),                                           # cgroup v2, --cpus=1.5
    ({"cpu.max": "max 100000\n"}, None),                                             # v2, no limit
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),    # v1, no limit
    ({}, None),                                                                      # no cgroup files
])
def test_a_cgroup_cpu_quota_is_read(tmp_path: Path, files: dict[str, str], cpus: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == cpus


def test_a_quota_below_the_cpus_caps_them_rounded_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1
