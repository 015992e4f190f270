"""JSON in and out: body parsing with clear errors, orjson responses, the error map.

Bodies are parsed with orjson (strict JSON), then scanned once more by jiter only to refuse
duplicate keys, which orjson resolves silently; responses are serialised with orjson.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import jiter
import orjson
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from service.errors import BadRequest, BodyTimeout, NotAuthorised, ServiceError, UnsupportedMediaType

log = logging.getLogger("acne_scar_cds")
JSON_TYPES = ("application/json", "application/fhir+json")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    # Non-string keys: marshmallow keys list errors by index.
    payload = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(payload, status=status, headers=headers, mimetype="application/json")


DUPLICATE_KEY = re.compile(r'Detected duplicate key "(.*)" at line')


def refuse_duplicate_keys(raw: bytes) -> None:
    """Refuse duplicate keys: parsers disagree on which one wins ({"patientId": "p2",
    "patientId": "p1"} is p1 here and p2 elsewhere), so neither reading is safe. jiter finds
    them at the speed of a parse (the standard library's object_pairs_hook took 4x as long)."""
    try:
        # cache_mode="keys": jiter may keep keys in its string cache, never values (patient data).
        jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys")
    except ValueError as exc:
        if duplicate := DUPLICATE_KEY.match(str(exc)):
            raise BadRequest(f"The body repeats the key {duplicate.group(1)[:80]!r} in one object: duplicate "
                             "keys are refused, because parsers disagree on which one counts.") from None
        # orjson read it, so it is JSON: jiter stops where orjson does not, at 200 levels of nesting
        # (deeper than any FHIR resource).
        raise BadRequest(f"The body could not be read: {exc} (the service reads JSON up to 200 levels "
                         "deep).") from None


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Is `kind` anywhere in the exception's chain (Werkzeug wraps socket errors)?"""
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def body_limit() -> int:
    """The largest body accepted (Flask's limit is one byte more, to see a longer one)."""
    return int(current_app.config["MAX_CONTENT_LENGTH"]) - 1


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 / 413 / 415 that says what is wrong."""
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"Send the request as application/json, not {request.mimetype or 'no content type'!r}."
        )
    try:
        # A chunked body has no Content-Length: Werkzeug stops reading one byte past the limit,
        # and a body that long is refused here rather than cut and parsed.
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise
    except Exception as exc:  # a stalled client, a broken chunked encoding, a client that went away
        if _caused_by(exc, TimeoutError):
            raise BodyTimeout("The body did not arrive in time (fewer bytes than Content-Length).") from None
        raise BadRequest("The body could not be read (broken transfer encoding or connection).") from None
    if len(raw) > body_limit():
        raise RequestEntityTooLarge()
    try:
        body = orjson.loads(raw)  # strict RFC 8259: no NaN, no lone surrogates, depth-limited
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    refuse_duplicate_keys(raw)  # orjson keeps a repeated key's last value
    return body


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error answer: {"error": code, "message": ..., details}. The request
    log line carries the same code and message (observability), never patient data or tokens."""
    g.error, g.reason = code, message
    return json_response({"error": code, "message": message, **(details or {})}, status, headers)


def register_error_handlers(app: Flask) -> None:
    """Every error becomes a JSON answer with a stable code; never a stack trace."""

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            log.error("request failed: %s", exc.code)
        headers = {"WWW-Authenticate": exc.challenge} if isinstance(exc, NotAuthorised) else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        return error_response(413, "payload-too-large", f"The body is larger than the limit of {body_limit()} bytes.")

    @app.errorhandler(RecursionError)
    def too_deep(exc: RecursionError) -> Response:
        return error_response(400, "invalid-request", "The body is nested too deeply.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "-")
        response = error_response(exc.code or 500, code, exc.description or code)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")  # the traceback goes to the log, never to the client
        return error_response(500, "internal-error", "The service failed unexpectedly; no cards were produced.")
