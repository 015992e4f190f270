"""JSON in and out: body parsing with clear errors, orjson responses, the error map."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from service.errors import BadRequest, ServiceError, UnsupportedMediaType

log = logging.getLogger("acne_scar_cds")
JSON_TYPES = ("application/json", "application/fhir+json")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    # Non-string keys: marshmallow keys list errors by index.
    payload = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return Response(payload, status=status, headers=headers, mimetype="application/json")


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 / 413 / 415 that says what is wrong."""
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"Send the request as application/json, not {request.mimetype or 'no content type'!r}."
        )
    raw = request.get_data(cache=False)  # raises RequestEntityTooLarge past MAX_CONTENT_LENGTH
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def register_error_handlers(app: Flask) -> None:
    """Every error becomes a JSON answer with a stable code; never a stack trace."""

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            log.error("request failed: %s", exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_response(exc.body(), exc.status, headers)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return json_response({"error": "payload-too-large",
                              "message": f"The body is larger than the limit of {limit} bytes."}, 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "-")
        response = json_response({"error": code, "message": exc.description}, exc.code or 500)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")  # the traceback goes to the log, never to the client
        return json_response({"error": "internal-error",
                              "message": "The service failed unexpectedly; no cards were produced."}, 500)
