"""As many gunicorn workers as the CPUs the process may really use (service/workers.py): its
affinity mask, capped by a cgroup CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.workers import available_cpus, cpu_quota
from tests.support.paths import ROOT


def run_with_cpus(cpus: set[int], code: str) -> str:
    """`code`'s output in a fresh interpreter pinned to `cpus` (as taskset or --cpuset-cpus do)."""
    pinned = f"import os; os.sched_setaffinity(0, {cpus!r}); {code}"
    return subprocess.run(
        [sys.executable, "-c", pinned],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"},
    ).stdout


def test_workers_follow_the_cpus_the_process_may_use() -> None:
    config = "import runpy; print(runpy.run_path('service/gunicorn_conf.py')['workers'])"
    assert run_with_cpus({0}, config).strip() == "3"


@pytest.mark.parametrize(
    "files, cpus",
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),  # cgroup v2, --cpus=1.5
        ({"cpu.max": "max 100000\n"}, None),  # v2, no limit
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no limit
        ({}, None),  # no cgroup files
    ],
)
def test_a_cgroup_cpu_quota_is_read(tmp_path: Path, files: dict[str, str], cpus: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == cpus


def test_a_quota_below_the_cpus_caps_them_rounded_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1
