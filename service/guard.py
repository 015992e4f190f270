"""The gate in front of every endpoint: the caller's JWT is checked before the view runs, and
the caller decides which FHIR servers the call may be fetched from."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, request

from service.auth import AuthPolicy, load_issuers, verify
from service.errors import NO_TOKEN, Unauthorized
from service.fhir_servers import AllowedFhirServers
from service.settings import Settings, SettingsError

log = logging.getLogger("acne_scar_cds")
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs/"}
OPEN_PREFIXES = ("/docs",)  # the API docs page, its redirect and its scripts: a browser sends no JWT


def auth_policy(settings: Settings) -> AuthPolicy | None:
    """The policy for AUTH_MODE=required; None when auth is off. Refuses (SettingsError, saying
    what to set) a service that requires auth but trusts nobody, or that would have to take
    the audience from the caller's own Host header."""
    if settings.auth_mode == "off":
        return None
    issuers = load_issuers(settings.auth_issuers_file, settings.auth_issuers)
    if not issuers:
        raise SettingsError(
            "AUTH_MODE=required but no trusted issuer is configured: set "
            "AUTH_ISSUERS_FILE (a YAML/JSON list of {iss, jwks_url | jwks_file | "
            "jku_allowed, fhir_servers}) or AUTH_ISSUERS (the same, inline)"
        )
    if not settings.public_base_urls:
        raise SettingsError(
            "AUTH_MODE=required but PUBLIC_BASE_URL is not set: set it to the URL the EHR "
            "calls, e.g. PUBLIC_BASE_URL=https://cds.hospital.org (several, comma-separated); "
            "a token's aud must be that URL plus the path"
        )
    return AuthPolicy(
        issuers,
        settings.auth_algorithms,
        settings.auth_clock_skew,
        settings.auth_max_token_lifetime,
        settings.auth_tenants,
        settings.public_base_urls,
        settings.jwks_timeout,
        settings.jwks_cache_ttl,
    )


def install_guard(app: Flask, policy: AuthPolicy | None, settings: Settings) -> None:
    """Check every request but preflights and the operational endpoints. Without auth, every
    call may name the FHIR servers of FHIR_SERVERS_ALLOWED; with it, those of its issuer."""
    if policy is None:
        log.warning(
            "AUTH_MODE=off: any caller can get patient guidance. Never run like this "
            "next to real patient data; see README 'Registering with an EHR'."
        )
        app.extensions["cds_fhir_servers"] = AllowedFhirServers.of(
            settings.fhir_servers_allowed, "FHIR_SERVERS_ALLOWED"
        )
        return
    app.extensions["cds_fhir_servers"] = AllowedFhirServers.of((), "an unauthenticated call")

    @app.before_request
    def authenticate() -> None:
        if request.method == "OPTIONS" or request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise Unauthorized(NO_TOKEN)
        # Unauthorized (401) or, when the database of the replay check is down, 503: without it no
        # call can be trusted (service/web.py TRANSLATIONS).
        _, issuer = verify(token, audiences(policy), policy, current_app.extensions["cds_store"])
        g.fhir_servers = issuer.fhir_servers


def allowed_fhir_servers() -> AllowedFhirServers:
    """The FHIR servers this call may be fetched from (service/fhir_servers.py)."""
    return g.get("fhir_servers") or current_app.extensions["cds_fhir_servers"]


def audiences(policy: AuthPolicy) -> list[str]:
    """`aud` must be the URL called (CDS Hooks §Trusting CDS Clients), with or without a
    trailing slash, at one of the public base URLs: never the Host header, which the caller
    chooses (a token signed for another CDS service, sent here with its Host, would pass)."""
    path = request.path.rstrip("/")
    return [base + path + end for base in policy.public_base_urls for end in ("", "/")]
