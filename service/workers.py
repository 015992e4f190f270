"""How many gunicorn workers by default: 2 x CPUs + 1 (gunicorn's advice for workers that also
wait on FHIR servers), counting the CPUs this process may really use. os.cpu_count() is the
host's: inside a container limited to 1 CPU on a 64-core node it would start 129 workers."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def default_workers() -> int:
    return 2 * available_cpus() + 1


def available_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs of this process's affinity mask (`taskset`, `docker --cpuset-cpus`), capped by
    a CFS quota (`docker --cpus`, a Kubernetes CPU limit), rounded up."""
    cpus = len(os.sched_getaffinity(0))
    quota = cpu_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`);
    None when there is no limit or no cgroup file to read."""
    try:
        if (cgroup / "cpu.max").exists():
            quota, period = (cgroup / "cpu.max").read_text().split()
        else:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    return int(quota) / int(period)
