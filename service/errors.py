"""The service's errors and the one map from error to HTTP answer.

Per CDS Hooks 2.0.1, a failure is never `200 {"cards": []}`: the EHR must be able to tell
"no advice" from "could not advise". Every error body is JSON with a stable `error` code and a
human `message`; never a stack trace.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error the service answers with; subclasses fix status and code."""

    status = 500
    code = "internal-error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class BadRequest(ServiceError):
    """400: malformed JSON or a request that breaks the CDS Hooks schema."""

    status = 400
    code = "invalid-request"

    @classmethod
    def from_fields(cls, what: str, errors: Any) -> BadRequest:
        """A schema's refusal: the message names the fields that failed (so does the log line,
        which carries the message); `errors` holds marshmallow's messages per field."""
        return cls(f"{what} does not follow CDS Hooks 2.0.1: see {', '.join(field_paths(errors)[:10])}.",
                   errors=errors)


def field_paths(errors: Any, prefix: str = "") -> list[str]:
    """The dotted paths of marshmallow's nested error messages ("context.patientId")."""
    if not isinstance(errors, dict):
        return [prefix or "(body)"]
    paths = []
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths += field_paths(value, path) if isinstance(value, dict) else [path]
    return paths


class NotAuthorised(ServiceError):
    """401: the caller's JWT failed a check. The body says no more than that (which check
    failed is in the log), so it does not help an attacker."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, token_sent: bool) -> None:
        super().__init__(message)
        # RFC 6750 §3: a token that fails a check is `invalid_token`; a request without one
        # gets the bare challenge (§3.1: "SHOULD NOT include an error code").
        self.challenge = 'Bearer error="invalid_token"' if token_sent else "Bearer"


class BodyTimeout(ServiceError):
    """408: the client stopped sending the body (see service/gunicorn_worker.py)."""

    status = 408
    code = "request-timeout"


class UnknownService(ServiceError):
    """404: no CDS service with that id (CDS Hooks §Calling a CDS Service)."""

    status = 404
    code = "unknown-service"


class UnsupportedMediaType(ServiceError):
    """415: the body is not JSON."""

    status = 415
    code = "unsupported-media-type"


class PrefetchUnavailable(ServiceError):
    """412: data the service needs was neither prefetched nor obtainable from fhirServer
    (CDS Hooks 2.0.1 §Prefetch: "the CDS Service SHALL respond with 412")."""

    status = 412
    code = "prefetch-unavailable"


class UnknownCard(ServiceError):
    """422: feedback about a card (or suggestion, or override reason) this service never
    issued. Nothing of the request is stored."""

    status = 422
    code = "unknown-card"


class StoreUnavailable(ServiceError):
    """503: the feedback database cannot be reached; the client may retry."""

    status = 503
    code = "store-unavailable"


class InvalidCards(ServiceError):
    """500: the engine produced a card that breaks CDS Hooks; never sent to the EHR."""

    status = 500
    code = "invalid-cards"
