"""Request logging, request ids and request metrics: one JSON line per request.

The line holds time, level, request id (X-Request-ID if the caller sent a sane one, else new;
echoed in the response), method, endpoint, service id, hookInstance, status, duration, number
of cards and which prefetch keys were fetched; for an error answer, its code and message
(`error`, `reason`), as in the body. Never patient identifiers (the endpoint is the
route, not the URL), never tokens.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from service import metrics
from service.logformat import json_formatter

log = logging.getLogger("acne_scar_cds")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
# What the views and the error map add to the line; an error answer carries its code and message
# (the reason an operator needs), which never hold patient data or tokens.
# `silent`: cards evaluated and kept back under CARDS_MODE=silent.
LOGGED = ("service_id", "hook_instance", "cards", "silent", "fetched", "error", "reason")


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the service's logger (idempotent)."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(json_formatter())
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level)


def install(app: Flask) -> None:
    """Time, identify, log and count every request."""
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.started = time.perf_counter()
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    duration = time.perf_counter() - g.get("started", time.perf_counter())
    endpoint = request.url_rule.rule if request.url_rule else "(unmatched)"
    service = g.get("service_id", "")
    response.headers["X-Request-ID"] = g.get("request_id", "")
    line: dict[str, Any] = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "endpoint": endpoint,
        "status": response.status_code,
        "duration_ms": round(duration * 1000, 1),
    }
    line |= {key: g.get(key) for key in LOGGED if key in g}
    log.info("request", extra=line)
    metrics.REQUESTS.labels(endpoint, service, str(response.status_code)).inc()
    metrics.LATENCY.labels(endpoint, service).observe(duration)
    return response
