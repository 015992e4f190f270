"""The application factory: settings in, a ready Flask app out. Nothing at import time."""

from __future__ import annotations

import gc
import logging

import requests
from flask import Flask
from flask_cors import CORS

from cards.engine import Engine
from service import governance, observability
from service.docs import docs_blueprint
from service.guard import auth_policy, install_guard
from service.registry import Registry, default_registry
from service.settings import Settings
from service.store import Store
from service.views import bp
from service.web import register_error_handlers

log = logging.getLogger("acne_scar_cds")


def create_app(
    settings: Settings | None = None, registry: Registry | None = None, engine: Engine | None = None
) -> Flask:
    """Build the app; the content is loaded and checked here (unless an `engine` loaded already
    is given: tests share one), so a broken catalogue stops the boot rather than a request."""
    settings = settings or Settings.from_env()
    observability.configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1  # see web.json_body
    app.extensions["cds_settings"] = settings
    app.extensions["cds_engine"] = engine = engine or Engine.load()
    # Governance (README "Going live safely"): which content runs, its sign-off, silent services.
    review = governance.content_review(settings, engine.catalogue.guideline_version)
    registry = governance.with_usage_requirements(registry or default_registry(settings.bench_baseline), review)
    governance.check_cards_mode(settings.cards_mode, registry)
    app.extensions["cds_registry"], app.extensions["cds_content_review"] = registry, review
    app.extensions["cds_session"] = requests.Session()
    app.extensions["cds_store"] = store = Store.from_url(settings.database_url)
    if settings.migrate_on_start:  # under gunicorn the master did it (service/gunicorn_conf.py)
        store.migrate()
    observability.install(app)  # first: rejected calls are timed, logged and counted too
    install_guard(app, auth_policy(settings), settings)
    CORS(
        app,
        origins=list(settings.cors_origins),
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        max_age=600,
    )
    app.register_blueprint(bp)
    app.register_blueprint(docs_blueprint())
    register_error_handlers(app)
    if settings.today:
        log.warning("CDS_TODAY=%s: every date rule runs as if today were that day", settings.today)
    governance.warn_at_start(review, governance.modes(settings.cards_mode, registry))
    return app


def settle_after_start() -> None:
    """Move everything loaded at start-up (libraries, FHIR models, content: ~120,000 objects)
    out of the cyclic garbage collector's sight. Otherwise every collection triggered while a
    large request body is parsed walks them again: parsing a 900 KB body took 8 ms instead of 2.
    Call once the app is built (gunicorn: post_worker_init)."""
    gc.collect()
    gc.freeze()
