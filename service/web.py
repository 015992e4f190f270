"""JSON in and out: body parsing with clear errors, orjson responses, the error table.

Bodies are parsed with orjson (strict JSON), then scanned once more by jiter only to refuse
duplicate keys, which orjson resolves silently; responses are serialised with orjson.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import jiter
import orjson
from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from service import metrics
from service.errors import (
    BadRequest,
    BodyTimeout,
    HttpError,
    InternalError,
    PayloadTooLarge,
    ServiceError,
    StoreUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

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
            raise BadRequest(
                f"The body repeats the key {duplicate.group(1)[:80]!r} in one object: duplicate "
                "keys are refused, because parsers disagree on which one counts."
            ) from None
        # orjson read it, so it is JSON: jiter stops where orjson does not, at 200 levels of nesting
        # (deeper than any FHIR resource).
        raise BadRequest(f"The body could not be read: {exc} (the service reads JSON up to 200 levels deep).") from None


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
        raise PayloadTooLarge(body_limit()) from None
    except Exception as exc:  # a stalled client, a broken chunked encoding, a client that went away
        if _caused_by(exc, TimeoutError):
            raise BodyTimeout("The body did not arrive in time (fewer bytes than Content-Length).") from None
        raise BadRequest("The body could not be read (broken transfer encoding or connection).") from None
    if len(raw) > body_limit():
        raise PayloadTooLarge(body_limit())
    try:
        body = orjson.loads(raw)  # strict RFC 8259: no NaN, no lone surrogates, depth-limited
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    refuse_duplicate_keys(raw)  # orjson keeps a repeated key's last value
    return body


def answer(error: ServiceError) -> Response:
    """The one way an error becomes an answer: its body (`ServiceError.body`), status and headers,
    and its code and message on the request's log line (service/observability.py), which never
    carries patient data or tokens."""
    g.error, g.reason = error.code, error.message
    if error.status >= 500 and not isinstance(error, InternalError):  # InternalError logged its traceback
        log.error("request failed: %s", error.code)
    return json_response(error.body(), error.status, error.headers())


def _raised(error: ServiceError) -> ServiceError:
    return error


def _rejected(error: Unauthorized) -> ServiceError:
    """A caller refused by the JWT check: which check failed goes to the log and the metrics only."""
    endpoint = request.url_rule.rule if request.url_rule else "(unmatched)"
    log.warning(
        "auth-rejected", extra={"reason": error.reason, "endpoint": endpoint, "request_id": g.get("request_id")}
    )
    metrics.JWT_REJECTIONS.labels(error.reason).inc()
    return error


def _http_error(exc: HTTPException) -> ServiceError:
    code = (exc.name or "error").lower().replace(" ", "-")
    allow = tuple(exc.valid_methods or ()) if isinstance(exc, MethodNotAllowed) else ()
    return HttpError(exc.code or 500, code, exc.description or code, allow)


def _unexpected(exc: Exception) -> ServiceError:
    log.exception("unexpected error")  # the traceback goes to the log, never to the client
    return InternalError("The service failed unexpectedly; no cards were produced.")


# Exception -> the error it is answered as; Flask picks the row of the nearest class.
TRANSLATIONS: tuple[tuple[type[Exception], Callable[[Any], ServiceError]], ...] = (
    (ServiceError, _raised),
    (Unauthorized, _rejected),
    # Werkzeug refuses a Content-Length over the limit before the body is read.
    (RequestEntityTooLarge, lambda exc: PayloadTooLarge(body_limit())),
    (RecursionError, lambda exc: BadRequest("The body is nested too deeply.")),
    # The feedback store, the report or the token replay check: the database is down.
    (
        SQLAlchemyError,
        lambda exc: StoreUnavailable("The service's database cannot be reached; nothing was stored. Retry later."),
    ),
    (HTTPException, _http_error),
    (Exception, _unexpected),
)


def register_error_handlers(app: Flask) -> None:
    """Every error becomes a JSON answer with a stable code (TRANSLATIONS); never a stack trace."""
    for kind, translate in TRANSLATIONS:
        app.register_error_handler(kind, _answering(translate))


def _answering(translate: Callable[[Any], ServiceError]) -> Callable[[Any], Response]:
    return lambda exc: answer(translate(exc))
