"""Prometheus metrics, safe under several gunicorn workers.

gunicorn_conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before workers start;
each worker then writes its own files and /metrics adds them up. Without it (tests, the CLI)
the process's own registry is used. Labels carry service and card ids, never patient data.
"""

from __future__ import annotations

import os

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
LATENCY = Histogram("cds_request_duration_seconds", "Time to answer a request", ["endpoint", "service"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
CARDS = Counter("cds_cards_issued_total", "Cards evaluated, by catalogue card id and mode (live: sent; "
                "silent: recorded, not sent)", ["service", "card", "mode"])
FETCHES = Counter("cds_prefetch_fetches_total", "Fallback fetches of prefetch keys from fhirServer",
                  ["key", "outcome"])
JWT_REJECTIONS = Counter("cds_jwt_rejections_total", "Calls refused by the JWT check", ["reason"])


def exposition() -> tuple[bytes, str]:
    """The metrics text of every worker (multiprocess) or of this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
