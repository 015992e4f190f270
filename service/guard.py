"""The gate in front of every endpoint: the caller's JWT is checked before the view runs."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from service import metrics
from service.auth import AuthPolicy, Unauthorized, load_issuers, verify
from service.errors import NotAuthorised, StoreUnavailable
from service.settings import Settings, SettingsError

log = logging.getLogger("acne_scar_cds")
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs/"}
OPEN_PREFIXES = ("/docs",)  # the API docs page, its redirect and its scripts: a browser sends no JWT


def auth_policy(settings: Settings) -> AuthPolicy | None:
    """The policy for AUTH_MODE=required; None when auth is off. Refuses to start a service
    that requires auth but trusts nobody."""
    if settings.auth_mode == "off":
        log.warning("AUTH_MODE=off: any caller can get patient guidance. Never run like this "
                    "next to real patient data; see README 'Registering with an EHR'.")
        return None
    issuers = load_issuers(settings.auth_issuers_file, settings.auth_issuers)
    if not issuers:
        raise SettingsError("AUTH_MODE=required but no trusted issuer is configured: set "
                            "AUTH_ISSUERS_FILE (a YAML/JSON list of {iss, jwks_url | jwks_file | "
                            "jku_allowed}) or AUTH_ISSUERS (the same, inline)")
    return AuthPolicy(issuers, settings.auth_algorithms, settings.auth_clock_skew, settings.auth_tenants,
                      settings.jwks_timeout, settings.jwks_cache_ttl)


def install_guard(app: Flask, policy: AuthPolicy | None) -> None:
    """Check every request but preflights and the operational endpoints."""
    if policy is None:
        return

    @app.before_request
    def authenticate() -> None:
        if request.method == "OPTIONS" or request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("no-bearer-token")
            verify(token.strip(), *audiences(), policy=policy, store=current_app.extensions["cds_store"])
        except SQLAlchemyError:
            # The replay check needs the database: without it no call can be trusted.
            raise StoreUnavailable("The service cannot check the caller's token right now. Retry later.") from None
        except Unauthorized as exc:
            endpoint = request.url_rule.rule if request.url_rule else "(unmatched)"
            log.warning("auth-rejected", extra={"reason": exc.reason, "endpoint": endpoint,
                                                "request_id": g.get("request_id")})
            metrics.JWT_REJECTIONS.labels(exc.reason).inc()
            raise NotAuthorised("The request is not authorised.") from None


def audiences() -> tuple[list[str]]:
    """`aud` must be the URL called (CDS Hooks §Trusting CDS Clients), with or without a
    trailing slash; behind a proxy, PUBLIC_BASE_URL says what the client called."""
    settings: Settings = current_app.extensions["cds_settings"]
    base = settings.public_base_url or request.host_url.rstrip("/")
    url = base + request.path.rstrip("/")
    return ([url, url + "/"],)
