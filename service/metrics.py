"""Prometheus metrics, safe under several gunicorn workers.

gunicorn_conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before workers start;
each worker then writes its own files and /metrics adds them up. Without it (tests, the CLI)
the process's own registry is used. Labels carry service and card ids, never patient data.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("cds_requests_total", "HTTP requests answered", ["endpoint", "service", "status"])
LATENCY = Histogram(
    "cds_request_duration_seconds",
    "Time to answer a request",
    ["endpoint", "service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CARDS = Counter(
    "cds_cards_issued_total",
    "Cards evaluated, by catalogue card id and mode (live: sent; silent: recorded, not sent)",
    ["service", "card", "mode"],
)
FETCHES = Counter("cds_prefetch_fetches_total", "Fallback fetches of prefetch keys from fhirServer", ["key", "outcome"])
JWT_REJECTIONS = Counter("cds_jwt_rejections_total", "Calls refused by the JWT check", ["reason"])


def exposition(multiproc_dir: str | None) -> tuple[bytes, str]:
    """The metrics text of every worker (from `multiproc_dir`, Settings.prometheus_multiproc_dir)
    or of this process."""
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, multiproc_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
