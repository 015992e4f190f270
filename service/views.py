"""The HTTP endpoints: discovery, hook calls, health, the OpenAPI contract. Each view is a
handful of lines: parse, call the domain, answer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from service import metrics
from service.dashboard import dashboard_page
from service.feedback import record_feedback
from service.fhir_client import FetchPolicy
from service.governance import modes
from service.guard import allowed_fhir_servers
from service.hooks import call_service, remember_cards
from service.settings import Settings
from service.web import json_body, json_response

bp = Blueprint("cds", __name__)
OPENAPI = Path(__file__).parent / "openapi.yaml"


@bp.get("/cds-services")
def discovery() -> Response:
    """CDS Hooks 2.0.1 §Discovery: the services offered, generated from the registry."""
    registry = current_app.extensions["cds_registry"]
    return json_response({"services": [s.discovery() for s in registry]})


@bp.post("/cds-services/<service_id>")
def hook(service_id: str) -> Response:
    """CDS Hooks 2.0.1 §Calling a CDS Service: validate, prefetch, evaluate, answer cards."""
    ext = current_app.extensions
    service = ext["cds_registry"].get(service_id)
    g.service_id = service.id
    result = call_service(
        service,
        json_body(),
        ext["cds_session"],
        _policy(ext["cds_settings"]),
        ext["cds_engine"],
        _today(ext["cds_settings"]),
    )
    # CARDS_MODE=silent (README "Going live safely"): every card is evaluated and recorded as
    # silent, none is sent; the request log says how many were kept back (`silent`).
    mode = ext["cds_settings"].cards_mode.of(service.id)
    answer = result.response(mode)
    g.hook_instance, g.cards, g.fetched = result.hook_instance, len(answer["cards"]), result.fetched
    if mode == "silent":
        g.silent = len(result.cards)
    for card in result.cards:
        metrics.CARDS.labels(service.id, card.card_id, mode).inc()
    remember_cards(ext["cds_store"], service.id, result, mode)
    return json_response(answer)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """CDS Hooks 2.0.1 §Feedback: what the clinician did with each card; stored once."""
    ext = current_app.extensions
    service = ext["cds_registry"].get(service_id)
    g.service_id = service.id
    counts = record_feedback(
        service.id,
        json_body(),
        ext["cds_store"],
        ext["cds_engine"].catalogue,
        ext["cds_settings"].feedback_keep_comments,
    )
    return json_response(counts)


@bp.get("/feedback-report")
def feedback_report() -> Response:
    """Acceptance per card and suggestion, firings per 100 calls (silent and live), for content
    reviewers (`?service=` to narrow): JSON, or the dashboard for a client preferring HTML."""
    ext = current_app.extensions
    service_id = request.args.get("service")
    if service_id is not None:
        ext["cds_registry"].get(service_id)
    report = ext["cds_store"].report(service_id)  # the database down: 503 (service/web.py TRANSLATIONS)
    # Content negotiation (RFC 9110 §12.5.1): JSON unless text/html is preferred (a browser).
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        page = dashboard_page(
            report, ext["cds_engine"].catalogue, f"service {service_id}" if service_id else "every service"
        )
        return Response(page, mimetype="text/html", headers={"Vary": "Accept"})
    return json_response(report, headers={"Vary": "Accept"})


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the process can serve, i.e. the database it needs answers."""
    ext = current_app.extensions
    # Not checks: what runs, whether it is signed off, which services are silent (governance).
    details = {
        "content": ext["cds_content_review"].details(),
        "cards_mode": modes(ext["cds_settings"].cards_mode, ext["cds_registry"]),
    }
    try:
        ext["cds_store"].ping()
    except SQLAlchemyError:
        return json_response({"status": "unavailable", "checks": {"database": "unreachable"}, **details}, 503)
    return json_response({"status": "ready", "checks": {"database": "ok"}, **details})


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus metrics of every worker."""
    body, content_type = metrics.exposition(current_app.extensions["cds_settings"].prometheus_multiproc_dir)
    return Response(body, content_type=content_type)


@bp.get("/openapi.yaml")
def openapi() -> Response:
    """The HTTP contract of this service."""
    return Response(OPENAPI.read_bytes(), mimetype="application/yaml")


def _policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        settings.fhir_connect_timeout,
        settings.fhir_read_timeout,
        settings.fhir_fetch_budget,
        settings.fhir_max_pages,
        settings.fhir_max_entries,
        allowed_fhir_servers(),
    )


def _today(settings: Settings) -> date:
    return settings.today or date.today()
