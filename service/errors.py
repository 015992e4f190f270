"""The service's errors: one class per condition, each with its HTTP status and stable code.

Per CDS Hooks 2.0.1, a failure is never `200 {"cards": []}`: the EHR must be able to tell
"no advice" from "could not advise". Every error body is JSON with a stable `error` code and a
human `message` (`error_body`, the one shape, also of the answers gunicorn gives itself); never
a stack trace. Which exception becomes which error is one table, `service.web.TRANSLATIONS`,
registered in the application factory.
"""

from __future__ import annotations

from typing import Any

NO_TOKEN = "no-bearer-token"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The one shape of every error answer: {"error": code, "message": ..., details}."""
    return {"error": code, "message": message, **details}


class ServiceError(Exception):
    """Base of every error the service answers with; subclasses fix status and code."""

    status = 500
    code = "internal-error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, **self.details)

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the body (none, unless a condition needs one)."""
        return {}


class BadRequest(ServiceError):
    """400: malformed JSON or a request that breaks the CDS Hooks schema."""

    status = 400
    code = "invalid-request"

    @classmethod
    def from_fields(cls, what: str, errors: Any) -> BadRequest:
        """A schema's refusal: the message names the fields that failed (so does the log line,
        which carries the message); `errors` holds marshmallow's messages per field."""
        return cls(f"{what} does not follow CDS Hooks 2.0.1: see {', '.join(field_paths(errors)[:10])}.", errors=errors)


def field_paths(errors: Any, prefix: str = "") -> list[str]:
    """The dotted paths of marshmallow's nested error messages ("context.patientId")."""
    if not isinstance(errors, dict):
        return [prefix or "(body)"]
    paths = []
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths += field_paths(value, path) if isinstance(value, dict) else [path]
    return paths


class Unauthorized(ServiceError):
    """401: the caller's JWT failed a check (CDS Hooks §Trusting CDS Clients). `reason` is a
    stable word for the log and the metrics (service/auth.py lists them); the body says no more
    than "not authorised", so it does not help an attacker."""

    status = 401
    code = "unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__("The request is not authorised.")
        self.reason = reason

    def headers(self) -> dict[str, str]:
        # RFC 6750 §3: a token that fails a check is `invalid_token`; a request without one
        # gets the bare challenge (§3.1: "SHOULD NOT include an error code").
        return {"WWW-Authenticate": "Bearer" if self.reason == NO_TOKEN else 'Bearer error="invalid_token"'}


class UnknownService(ServiceError):
    """404: no CDS service with that id (CDS Hooks §Calling a CDS Service)."""

    status = 404
    code = "unknown-service"


class BodyTimeout(ServiceError):
    """408: the client stopped sending the body (see service/gunicorn_worker.py)."""

    status = 408
    code = "request-timeout"


class PrefetchUnavailable(ServiceError):
    """412: data the service needs was neither prefetched nor obtainable from fhirServer
    (CDS Hooks 2.0.1 §Prefetch: "the CDS Service SHALL respond with 412")."""

    status = 412
    code = "prefetch-unavailable"


class PayloadTooLarge(ServiceError):
    """413: the body is longer than MAX_BODY_BYTES."""

    status = 413
    code = "payload-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The body is larger than the limit of {limit} bytes.")


class UnsupportedMediaType(ServiceError):
    """415: the body is not JSON."""

    status = 415
    code = "unsupported-media-type"


class UnknownCard(ServiceError):
    """422: feedback about a card (or suggestion, or override reason) this service never
    issued. Nothing of the request is stored."""

    status = 422
    code = "unknown-card"


class StoreUnavailable(ServiceError):
    """503: the database cannot be reached (feedback, the report, or the token replay check);
    nothing was stored and the client may retry."""

    status = 503
    code = "store-unavailable"


class InvalidCards(ServiceError):
    """500: the engine produced a card that breaks CDS Hooks; never sent to the EHR."""

    status = 500
    code = "invalid-cards"


class InternalError(ServiceError):
    """500: an exception nothing else answers (a bug); its traceback goes to the log only."""

    status = 500
    code = "internal-error"


class HttpError(ServiceError):
    """A refusal Werkzeug makes itself (no such route, method not allowed), in the same shape:
    its status, its name as the code."""

    def __init__(self, status: int, code: str, message: str, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.allow = status, code, allow

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)} if self.allow else {}
