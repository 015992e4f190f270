"""The application factory: settings in, a ready Flask app out. Nothing at import time."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import requests
from flask import Flask, Response, g, request
from flask_cors import CORS

from cards.engine import Engine
from service.guard import auth_policy, install_guard
from service.registry import Registry, default_registry
from service.settings import Settings
from service.store import Store
from service.views import bp
from service.web import register_error_handlers

log = logging.getLogger("acne_scar_cds")


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> Flask:
    """Build the app; the content is loaded and checked here, so a broken catalogue stops
    the boot rather than a request."""
    settings = settings or Settings.from_env()
    _configure_logging(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["cds_settings"] = settings
    app.extensions["cds_registry"] = registry or default_registry()
    app.extensions["cds_engine"] = Engine.load()
    app.extensions["cds_session"] = requests.Session()
    app.extensions["cds_store"] = store = Store.from_url(settings.database_url)
    if settings.migrate_on_start:
        store.migrate()
    install_guard(app, auth_policy(settings))
    CORS(app, origins=list(settings.cors_origins), methods=["GET", "POST", "OPTIONS"],
         allow_headers=["Content-Type", "Authorization"], max_age=600)
    app.register_blueprint(bp)
    register_error_handlers(app)
    app.before_request(_start_timer)
    app.after_request(_log_request)
    if settings.today:
        log.warning("CDS_TODAY=%s: every date rule runs as if today were that day", settings.today)
    return app


def _configure_logging(settings: Settings) -> None:
    logger = logging.getLogger("acne_scar_cds")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(settings.log_level)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """One structured line per request: never patient data, never tokens."""
    line: dict[str, Any] = {
        "event": "request",
        "method": request.method,
        "path": request.url_rule.rule if request.url_rule else "(unmatched)",
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
    }
    for key in ("service_id", "hook_instance", "cards", "fetched"):
        if key in g:
            line[key] = g.get(key)
    log.info(json.dumps(line))
    return response
