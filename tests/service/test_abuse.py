"""Abuse of the HTTP API: malformed, hostile and absurd requests.

Every abusive request must get a 4xx answer whose body is JSON `{"error": ..., "message": ...}`
naming the problem: never a 5xx, a stack trace, an HTML page, or a silent `{"cards": []}` (which
the EHR would read as "no advice for this patient"). Most cases run on the Flask test client;
what depends on the transport (chunked bodies, lying Content-Length, oversized headers) runs
against a real gunicorn (tests/system/test_abuse_gunicorn.py).

The section "Found by these tests, and fixed" keeps a regression test for every defect these
tests found (duplicate keys, deep nesting, unhashable resource types, garbage prefetch, chunked
bodies over the limit, gunicorn's own error pages, stalled bodies).
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms
from werkzeug.test import TestResponse

from cards.card_rules import CardSchema
from service.app import create_app
from service.settings import Settings
from tests.support.fhir import icepick_scar, isotretinoin_statement, patient
from tests.support.hooks import SERVICE_URL, hook_request

FEEDBACK_URL = f"{SERVICE_URL}/feedback"
# Every endpoint that reads a JSON body (they share service.web.json_body).
BODY_URLS = [SERVICE_URL, "/cds-services/acne-scar-order-select", "/cds-services/acne-scar-order-sign", FEEDBACK_URL]
JSON = "application/json"
EMOJI, RTL, NUL = "\U0001f600", "\u202e", "\u0000"
CARD_UUID = "0b9ad3a5-7f4b-4c53-9d6f-2a54f1a1c0de"


def body(*resources: dict[str, Any]) -> dict[str, Any]:
    """A valid patient-view request for patient p1 with ice-pick scars and `resources`."""
    request = hook_request(icepick_scar(), *resources)
    request["prefetch"]["patient"] = patient()
    return request


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def post(
    client: FlaskClient, data: str | bytes, content_type: str | None = JSON, path: str = SERVICE_URL
) -> TestResponse:
    if content_type is None:
        return client.post(path, data=data)
    return client.post(path, data=data, content_type=content_type)


def assert_error(response: TestResponse, status: int, error: str, *named: str) -> dict[str, Any]:
    """The answer is `status`, JSON with the stable `error` code and a human `message`, and its
    body (message and field errors) names each of `named`."""
    raw = response.get_data()
    assert response.status_code == status, raw[:1000]
    assert response.mimetype == JSON, raw[:1000]
    answer = response.get_json()
    assert isinstance(answer, dict), raw[:1000]
    assert answer.get("error") == error, answer
    assert isinstance(answer.get("message"), str) and answer["message"], answer
    assert b"Traceback" not in raw and b'File "' not in raw and b"<html" not in raw.lower()
    shown = text(answer)
    for word in named:
        assert word in shown, (word, shown[:2000])
    return answer


def cards_of(response: TestResponse) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data()[:1000]
    return response.get_json()["cards"]


# ---------------------------------------------------------------------------------------------
# The body is not a JSON object


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("[" * 100_000 + "]" * 100_000, "depth limit"),
        ("[" * 100_000, "depth limit"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "depth limit"),
        (b"", "empty"),
        (b'{"hook": "patient-view\xff\xfe"}', "UTF-8"),
        (b"\xc3\x28", "UTF-8"),
        (b"\xef\xbb\xbf" + json.dumps(hook_request()).encode(), "BOM"),
        ('{"hook": NaN}', "not valid JSON"),
        ('{"hook": "patient-view"} trailing', "after document"),
        ('{"hook": "\\ud800"}', "surrogate"),
        ('{"hook": "patient-view",', "not valid JSON"),
    ],
    ids=[
        "100k-nested-arrays",
        "100k-unclosed-arrays",
        "100k-nested-objects",
        "empty",
        "invalid-utf8-in-string",
        "invalid-utf8",
        "utf8-bom",
        "nan",
        "trailing-garbage",
        "lone-surrogate",
        "truncated",
    ],
)
@pytest.mark.parametrize("url", BODY_URLS)
def test_a_body_that_is_not_json_is_400_naming_the_problem(
    client: FlaskClient, data: str | bytes, named: str, url: str
) -> None:
    answer = assert_error(post(client, data, path=url), 400, "invalid-request", named)
    assert answer["message"].startswith("The body is not valid JSON")


@pytest.mark.parametrize(
    "data", ['"patient-view"', "42", "-1.5e300", "null", "true", "[]", '[{"hook": "patient-view"}]']
)
@pytest.mark.parametrize("url", BODY_URLS)
def test_a_json_body_that_is_not_an_object_is_400(client: FlaskClient, data: str, url: str) -> None:
    answer = assert_error(post(client, data, path=url), 400, "invalid-request")
    assert answer["message"] == "The body must be a JSON object."


# ---------------------------------------------------------------------------------------------
# Content types


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "'text/plain'"),
        ("multipart/form-data; boundary=xyz", "'multipart/form-data'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
        ("application/json-patch+json", "'application/json-patch+json'"),
        (None, "no content type"),
    ],
)
@pytest.mark.parametrize("url", BODY_URLS)
def test_a_body_that_is_not_sent_as_json_is_415(
    client: FlaskClient, content_type: str | None, named: str, url: str
) -> None:
    data = json.dumps(body())
    if content_type and content_type.startswith("multipart/"):
        data = f'--xyz\r\nContent-Disposition: form-data; name="hook"\r\n\r\n{data}\r\n--xyz--\r\n'
    answer = assert_error(post(client, data, content_type, path=url), 415, "unsupported-media-type", named)
    assert "application/json" in answer["message"]


def test_a_real_multipart_form_is_415(client: FlaskClient) -> None:
    response = client.post(
        SERVICE_URL, data={"hook": "patient-view", "context": "{}"}, content_type="multipart/form-data"
    )
    assert_error(response, 415, "unsupported-media-type", "multipart/form-data")


def test_the_media_type_is_case_insensitive(client: FlaskClient) -> None:
    assert len(cards_of(post(client, json.dumps(body()), "APPLICATION/JSON; Charset=UTF-8"))) == 1


def test_a_utf16_body_is_400_saying_it_is_not_utf8(client: FlaskClient) -> None:
    response = post(client, json.dumps(body()).encode("utf-16"), "application/json; charset=utf-16")
    assert_error(response, 400, "invalid-request", "UTF-8")


# ---------------------------------------------------------------------------------------------
# Size


@pytest.mark.parametrize("url", BODY_URLS)
def test_a_body_one_byte_over_max_body_bytes_is_413(client: FlaskClient, settings: Settings, url: str) -> None:
    data = json.dumps(body()).encode()
    data += b" " * (settings.max_body_bytes + 1 - len(data))
    answer = assert_error(post(client, data, path=url), 413, "payload-too-large", str(settings.max_body_bytes))
    assert answer["message"] == f"The body is larger than the limit of {settings.max_body_bytes} bytes."


def test_a_body_of_exactly_max_body_bytes_is_accepted(client: FlaskClient, settings: Settings) -> None:
    data = json.dumps(body()).encode()
    data += b" " * (settings.max_body_bytes - len(data))
    assert len(cards_of(post(client, data))) == 1


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("hookInstance",), "Not a valid UUID."),
        (("hook",), "patient-view"),
        (("context", "patientId"), "Must be a FHIR id."),
        (("context", "userId"), "Must be a Practitioner"),
        (("context", "encounterId"), "Must be a FHIR id."),
        (("fhirServer",), "Not a valid URL."),
    ],
)
def test_a_four_megabyte_string_in_a_field_is_400_naming_the_field(
    client: FlaskClient, path: tuple[str, ...], named: str
) -> None:
    request = body()
    target = request
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "a" * 4_000_000
    answer = assert_error(post(client, json.dumps(request)), 400, "invalid-request", named)
    errors = answer["errors"]
    for key in path:
        errors = errors[key]
    assert errors


def test_a_four_megabyte_text_in_a_resource_is_read_not_a_crash(client: FlaskClient) -> None:
    scar = icepick_scar()
    scar["code"]["text"] = "Ice-pick acne scars " + "x" * 4_000_000
    request = hook_request(scar)
    (card,) = cards_of(post(client, json.dumps(request)))
    assert card["summary"].startswith("Ice-pick acne scars")


# ---------------------------------------------------------------------------------------------
# Unicode everywhere: emoji, right-to-left override, NUL


NASTY = [EMOJI, RTL, NUL, f"p1{NUL}", f"{RTL}1p", "\u05e4\u05e6\u05d9\u05e2\u05d4", "\ufeff", "\u200b"]


@pytest.mark.parametrize(
    "nasty", NASTY, ids=["emoji", "rtl", "nul", "trailing-nul", "rtl-prefix", "hebrew", "bom", "zero-width-space"]
)
@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("hookInstance",), "Not a valid UUID."),
        (("hook",), "answers the 'patient-view' hook"),
        (("context", "patientId"), "Must be a FHIR id."),
        (("context", "userId"), "Must be a Practitioner"),
        (("context", "encounterId"), "Must be a FHIR id."),
    ],
)
def test_unicode_in_a_request_field_is_400_naming_the_field(
    client: FlaskClient, nasty: str, path: tuple[str, ...], named: str
) -> None:
    request = body()
    target = request
    for key in path[:-1]:
        target = target[key]
    original = target.get(path[-1], "")
    target[path[-1]] = original + nasty if path[-1] != "encounterId" else nasty
    assert_error(post(client, text(request).encode()), 400, "invalid-request", path[-1], named)


@pytest.mark.parametrize("nasty", NASTY[:3], ids=["emoji", "rtl", "nul"])
def test_unicode_in_a_resource_id_is_read_and_the_record_named_as_sent(client: FlaskClient, nasty: str) -> None:
    """Not a FHIR id, but the rest of the Condition reads (GUIDELINE §1 v2): the plan is given,
    and it names the record by the id the EHR knows."""
    scar = icepick_scar(cid=f"scar{nasty}")
    (card,) = cards_of(post(client, text(hook_request(scar)).encode()))
    assert card["summary"].startswith("Ice-pick acne scars")
    assert f"- Condition/scar{nasty}: Ice-pick acne scars, cheeks (could not read id: not in the form" in card["detail"]


@pytest.mark.parametrize(
    "nasty", NASTY, ids=["emoji", "rtl", "nul", "trailing-nul", "rtl-prefix", "hebrew", "bom", "zero-width-space"]
)
def test_unicode_in_resource_text_comes_back_unchanged(client: FlaskClient, nasty: str) -> None:
    scar = icepick_scar()
    scar["code"]["text"] = f"Ice-pick acne scars {nasty} cheeks"
    (card,) = cards_of(post(client, text(hook_request(scar)).encode()))
    # Kept as sent; a service that strips control characters (RTL override, NUL) is fine too.
    kept, stripped = f"Ice-pick acne scars {nasty} cheeks", "Ice-pick acne scars  cheeks"
    assert f"Condition/scar1: {kept}" in card["detail"] or f"Condition/scar1: {stripped}" in card["detail"]


def test_an_unknown_prefetch_key_with_unicode_is_ignored(client: FlaskClient) -> None:
    request = body()
    request["prefetch"][f"pat{NUL}ient{EMOJI}{RTL}"] = {"resourceType": "Patient", "id": "p1"}
    assert len(cards_of(post(client, text(request).encode()))) == 1


@pytest.mark.parametrize("service_id", [EMOJI, f"acne-scar-treatment{NUL}", f"{RTL}tnemtaert"])
def test_unicode_in_the_service_id_is_404_naming_it(client: FlaskClient, service_id: str) -> None:
    response = client.post(f"/cds-services/{service_id}", data=json.dumps(body()), content_type=JSON)
    assert_error(response, 404, "unknown-service", "GET /cds-services")


# ---------------------------------------------------------------------------------------------
# Wrong JSON types: numbers for strings, arrays for objects, null everywhere


def set_path(request: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    request = copy.deepcopy(request)
    target: Any = request
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return request


WRONG_TYPES = [
    (("hook",), 1, "Not a valid string."),
    (("hook",), ["patient-view"], "Not a valid string."),
    (("hookInstance",), 123, "Not a valid UUID."),
    (("hookInstance",), {"id": "x"}, "Not a valid UUID."),
    (("context",), [], "Not a valid mapping type."),
    (("context",), "p1", "Not a valid mapping type."),
    (("context", "patientId"), 123, "Not a valid string."),
    (("context", "patientId"), ["p1"], "Not a valid string."),
    (("context", "userId"), ["Practitioner/x"], "Not a valid string."),
    (("prefetch",), [], "Not a valid mapping type."),
    (("prefetch",), "Patient/p1", "Not a valid mapping type."),
    (("fhirServer",), 1, "Not a valid URL."),
    (("fhirServer",), {"url": "https://ehr.example/fhir"}, "Not a valid URL."),
    (("fhirAuthorization",), [], "Invalid input type."),
]
NULLS = [
    ("hook",),
    ("hookInstance",),
    ("context",),
    ("prefetch",),
    ("fhirServer",),
    ("fhirAuthorization",),
    ("context", "patientId"),
    ("context", "userId"),
    ("context", "encounterId"),
]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    WRONG_TYPES + [(p, None, "Field may not be null.") for p in NULLS],
    ids=[".".join(p) + "=" + json.dumps(v) for p, v, _ in WRONG_TYPES] + [".".join(p) + "=null" for p in NULLS],
)
def test_a_wrong_json_type_in_the_request_is_400_naming_the_field(
    client: FlaskClient, path: tuple[str, ...], value: Any, named: str
) -> None:
    answer = assert_error(post(client, json.dumps(set_path(body(), path, value))), 400, "invalid-request", named)
    errors = answer["errors"]
    for key in path:
        errors = errors[key]
    assert named in text(errors)


def test_a_wrong_json_type_in_fhir_authorization_is_400(client: FlaskClient) -> None:
    request = body()
    request["fhirServer"] = "https://ehr.example/fhir"
    request["fhirAuthorization"] = {
        "access_token": ["secret"],
        "token_type": "Bearer",
        "expires_in": "300",
        "scope": None,
        "subject": 5,
    }
    answer = assert_error(post(client, json.dumps(request)), 400, "invalid-request")
    assert answer["errors"]["fhirAuthorization"] == {
        "access_token": ["Not a valid string."],
        "expires_in": ["Not a valid integer."],
        "scope": ["Field may not be null."],
        "subject": ["Not a valid string."],
    }
    assert "secret" not in text(answer)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("prefetch", "patient"), [], "prefetch.patient must be a FHIR resource or null"),
        (("prefetch", "conditions"), "Condition?patient=p1", "prefetch.conditions must be a FHIR resource or null"),
        (("prefetch", "conditions"), 7, "prefetch.conditions must be a FHIR resource or null"),
        (("prefetch", "conditions", "entry"), {}, "Bundle.entry is not a list"),
        (("prefetch", "conditions", "entry"), None, "Bundle.entry is not a list"),
        (("prefetch", "conditions", "entry"), [5], "a Bundle entry has no resource object"),
        (("prefetch", "conditions", "entry"), [None], "a Bundle entry has no resource object"),
        (("prefetch", "conditions", "entry", 0, "resource"), [], "a Bundle entry has no resource object"),
        (
            ("prefetch", "conditions", "entry", 0, "resource"),
            "Condition/scar1",
            "a Bundle entry has no resource object",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_malformed_prefetch_value_is_400_naming_the_key(
    client: FlaskClient, path: tuple[str | int, ...], value: Any, named: str
) -> None:
    response = post(client, json.dumps(set_path(body(), path, value)))
    assert_error(response, 400, "invalid-request", named, f"prefetch.{path[1]}")


def test_a_null_read_prefetch_means_the_resource_does_not_exist(client: FlaskClient) -> None:
    assert len(cards_of(post(client, json.dumps(set_path(body(), ("prefetch", "patient"), None))))) == 1


def test_a_null_search_prefetch_without_fhir_server_is_412_naming_the_key(client: FlaskClient) -> None:
    response = post(client, json.dumps(set_path(body(), ("prefetch", "conditions"), None)))
    answer = assert_error(response, 412, "prefetch-unavailable", "conditions", "Condition?patient=p1")
    assert [m["key"] for m in answer["missing"]] == ["conditions"]


SCAR_CONCEPT = icepick_scar()["code"]
PLAN, UNSPECIFIED = "Ice-pick acne scars: focal TCA CROSS", "Acne scarring: record the scar type"
LAST_DOSE, NO_LAST_DOSE = "Isotretinoin last dose 2026-09-26", "Isotretinoin on record with no last dose date"


@pytest.mark.parametrize(
    ("resource", "path", "value", "card", "named"),
    [
        ("scar", ("code", "text"), 123, PLAN, "could not read code.text: not text"),
        ("scar", ("code",), [SCAR_CONCEPT], PLAN, None),  # a list of one: read as that one
        ("scar", ("code",), [SCAR_CONCEPT, SCAR_CONCEPT], UNSPECIFIED, "code: several values"),
        ("scar", ("verificationStatus",), "confirmed", PLAN, "could not read verificationStatus"),
        ("isotretinoin", ("status",), 1, LAST_DOSE, "could not read status: not text"),
        ("isotretinoin", ("status",), None, LAST_DOSE, None),  # absent: its status is unknown
        ("isotretinoin", ("effectivePeriod",), [], NO_LAST_DOSE, "could not read effectivePeriod: an empty list"),
        ("isotretinoin", ("effectivePeriod", "end"), "26/09/2026", NO_LAST_DOSE, "could not read effectivePeriod.end"),
        ("isotretinoin", ("medicationCodeableConcept", "coding"), {"system": "x", "code": "197843"}, LAST_DOSE, None),
    ],
    ids=lambda v: None if isinstance(v, dict | list) or v is None else str(v)[:20],
)
def test_a_wrong_type_in_a_resource_the_rules_read_is_read_cautiously_and_named(
    client: FlaskClient, resource: str, path: tuple[str, ...], value: Any, card: str, named: str | None
) -> None:
    """GUIDELINE §1 (v2): no 422 for clinical data, no silent drop. A shape whose meaning is
    plain is repaired; a value that cannot be read is left out, the fact read the cautious way
    (an unknown last dose asks to confirm it), and the card names what could not be read."""
    scar, iso = icepick_scar(), isotretinoin_statement()
    target = set_path(scar if resource == "scar" else iso, path, value)
    request = hook_request(target, iso) if resource == "scar" else hook_request(scar, target)
    cards = cards_of(post(client, json.dumps(request)))
    shown = next((c for c in cards if c["summary"].startswith(card)), None)
    assert shown is not None, [c["summary"] for c in cards]
    assert named is None or named in shown["detail"], shown["detail"]


def test_a_null_isotretinoin_end_date_is_read_as_unknown_never_as_no_exposure(client: FlaskClient) -> None:
    """null is not FHIR JSON, but reading it as "absent" is the safe reading: last dose unknown."""
    iso = isotretinoin_statement()
    iso["effectivePeriod"]["end"] = None
    summaries = [c["summary"] for c in cards_of(post(client, json.dumps(hook_request(icepick_scar(), iso))))]
    assert any("no last dose date" in s for s in summaries), summaries


# ---------------------------------------------------------------------------------------------
# Any JSON anywhere: never a 5xx


FITZPATRICK = {
    "resourceType": "Observation",
    "id": "fitz1",
    "status": "final",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "66555-4"}]},
    "valueInteger": 2,
    "effectiveDateTime": "2026-01-10",
}


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


FUZZ_BASE = body(isotretinoin_statement(), FITZPATRICK)
FUZZ_PATHS = list(_paths(FUZZ_BASE))
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["", "2026-13-45", "Patient/p1", "p1", "#med", "active", "ice-pick", NUL, EMOJI + RTL, "66555-4", "Bundle"]
    )
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_any_json_value_anywhere_in_a_request_is_never_a_5xx(
    client: FlaskClient, changes: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    request = copy.deepcopy(FUZZ_BASE)
    for path, value in changes:
        target: Any = request
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced the parent
    response = post(client, text(request).encode())
    assert response.status_code in (200, 400, 412, 422), response.get_data()[:1000]
    if response.status_code != 200:
        assert_error(response, response.status_code, response.get_json()["error"])
    else:
        assert all(CardSchema().validate(card) == {} for card in response.get_json()["cards"])


# ---------------------------------------------------------------------------------------------
# Forged tokens (AUTH_MODE=required): whatever a token's header and claims hold, signed by a
# trusted key or not, the answer is 200 or 401, never a 5xx (the matrix is in test_auth.py)

TOKEN_KEYS: dict[str, Any] = {
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
TOKEN_KIDS = {"ES384": "ec", "RS384": "rsa"}
TOKEN_ISSUER = "https://ehr.example"
TOKEN_VALUES = (
    JSON_VALUES
    | st.floats()
    | st.integers(-(2**80), 2**80)
    | st.sampled_from(
        ["ES384", "RS384", "PS384", "HS384", "none", "ec", "rsa", "JWT", TOKEN_ISSUER, "http://localhost/cds-services"]
    )
)


@pytest.fixture
def secured(settings: Settings, tmp_path: Path) -> FlaskClient:
    """The service with AUTH_MODE=required, trusting one EHR with an EC and an RSA key."""
    algorithms: dict[str, Any] = {"ES384": ECAlgorithm, "RS384": RSAAlgorithm}
    keys = [
        {**algorithm.to_jwk(TOKEN_KEYS[alg].public_key(), as_dict=True), "kid": TOKEN_KIDS[alg]}
        for alg, algorithm in algorithms.items()
    ]
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    issuers = json.dumps([{"iss": TOKEN_ISSUER, "jwks_file": str(tmp_path / "jwks.json")}])
    return create_app(
        replace(settings, auth_mode="required", auth_issuers=issuers, public_base_urls=("http://localhost",))
    ).test_client()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    signer=st.sampled_from(sorted(TOKEN_KEYS)),
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "jku", "crit", "b64", "cty"]), TOKEN_VALUES, max_size=3
    ),
    claims=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "tenant", "sub"]), TOKEN_VALUES, max_size=3
    ),
)
def test_any_token_header_and_claims_are_a_401_or_200_never_a_5xx(
    secured: FlaskClient, signer: str, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    now = int(time.time())
    full_header = {"alg": signer, "kid": TOKEN_KIDS[signer], "typ": "JWT", **header}
    full_claims = {
        "iss": TOKEN_ISSUER,
        "aud": "http://localhost/cds-services",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    signing_input = f"{b64url(json.dumps(full_header).encode())}.{b64url(json.dumps(full_claims).encode())}"
    algorithm = get_default_algorithms()[signer]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(TOKEN_KEYS[signer]))
    response = secured.get("/cds-services", headers={"Authorization": f"Bearer {signing_input}.{b64url(signature)}"})
    assert response.status_code in (200, 401), response.get_data()[:1000]
    if response.status_code == 401:
        assert response.get_json() == {"error": "unauthorized", "message": "The request is not authorised."}


# ---------------------------------------------------------------------------------------------
# Feedback endpoint


@pytest.mark.parametrize(
    ("data", "status", "named"),
    [
        ("[]", 400, "The body must be a JSON object."),
        ('{"feedback": null}', 400, "Field may not be null."),
        ('{"feedback": [null]}', 400, "Field may not be null."),
        ('{"feedback": "accepted"}', 400, "Not a valid list."),
        ('{"feedback": []}', 400, "Length must be between 1 and 1000."),
        (
            json.dumps({"feedback": [{"card": EMOJI, "outcome": 5, "outcomeTimestamp": "yesterday"}]}),
            400,
            "Not a valid UUID.",
        ),
        (
            json.dumps(
                {"feedback": [{"card": CARD_UUID, "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00"}]}
            ),
            400,
            "time zone",
        ),
        (
            json.dumps(
                {
                    "feedback": [
                        {"card": CARD_UUID, "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}
                    ]
                    * 1001
                }
            ),
            400,
            "1000",
        ),
        (
            json.dumps(
                {"feedback": [{"card": CARD_UUID, "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}]}
            ),
            422,
            "was not issued by this service",
        ),
    ],
    ids=["array", "null", "null-item", "string", "empty", "wrong-types", "no-time-zone", "1001-items", "unknown-card"],
)
def test_abusive_feedback_is_4xx_naming_the_problem(client: FlaskClient, data: str, status: int, named: str) -> None:
    error = {400: "invalid-request", 422: "unknown-card"}[status]
    assert_error(post(client, data, path=FEEDBACK_URL), status, error, named)


def test_other_methods_and_paths_are_json(client: FlaskClient) -> None:
    assert_error(client.put(SERVICE_URL, data=json.dumps(body()), content_type=JSON), 405, "method-not-allowed")
    assert_error(client.delete(FEEDBACK_URL), 405, "method-not-allowed")
    assert_error(client.get(f"/feedback-report?service={NUL}{EMOJI}"), 404, "unknown-service")
    assert_error(client.get(f"/cds-services/{EMOJI}/{NUL}"), 404, "not-found")


# ---------------------------------------------------------------------------------------------
# Found by these tests, and fixed: regression tests


@pytest.mark.parametrize(
    ("member", "duplicated", "key"),
    [
        ('"hook": "patient-view"', '"hook": "order-sign", "hook": "patient-view"', "hook"),
        ('"patientId": "p1"', '"patientId": "p2", "patientId": "p1"', "patientId"),
        ('"status": "active"', '"status": "active", "status": "entered-in-error"', "status"),
    ],
    ids=["hook", "context.patientId", "prefetch-resource-status"],
)
def test_a_duplicate_json_key_is_400_naming_the_key(
    client: FlaskClient, member: str, duplicated: str, key: str
) -> None:
    data = json.dumps(hook_request(icepick_scar(), isotretinoin_statement(status="active", end=None)))
    assert data.count(member) == 1
    assert_error(post(client, data.replace(member, duplicated)), 400, "invalid-request", "duplicate", key)


def nested_extensions(depth: int) -> str:
    """A hook request whose scar Condition nests `depth` extensions (2 JSON levels each)."""
    nested = '{"url": "http://x", "extension": [' * depth + '{"url": "http://x", "valueString": "v"}' + "]}" * depth
    scar = json.dumps(icepick_scar())
    return json.dumps(hook_request(icepick_scar())).replace(scar, scar[:-1] + f', "extension": [{nested}]}}')


@pytest.mark.parametrize("depth", [150, 400])
def test_deep_nesting_inside_a_resource_is_400_not_500(client: FlaskClient, depth: int) -> None:
    # 300 and 800 JSON levels: valid JSON, deeper than the service reads (200 levels).
    assert_error(post(client, nested_extensions(depth)), 400, "invalid-request", "deep", "200")


def test_nesting_within_the_depth_limit_is_read_and_answered(client: FlaskClient) -> None:
    response = post(client, nested_extensions(90))  # 180 levels
    assert response.status_code == 200 and response.get_json()["cards"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("prefetch", "conditions"), {"resourceType": []}),
        (("prefetch", "conditions"), {"resourceType": {"text": "Bundle"}}),
    ],
    ids=["key-array", "key-object"],
)
def test_an_unhashable_resource_type_of_a_prefetch_key_is_400(
    client: FlaskClient, path: tuple[str | int, ...], value: Any
) -> None:
    response = post(client, json.dumps(set_path(body(), path, value)))
    assert_error(response, 400, "invalid-request", "resourceType")


@pytest.mark.parametrize(
    "resource_type",
    [None, "condition", "", 5, ["Condition"], {}],
    ids=["missing", "lower-case", "empty", "number", "array", "object"],
)
def test_an_entry_without_a_valid_resource_type_is_read_as_what_it_mentions(
    client: FlaskClient, resource_type: Any
) -> None:
    """A scar Condition whose resourceType is broken cannot be read, but it mentions an acne
    scar code: acne scarring of unrecorded type, the card naming the record (GUIDELINE §1 v2)."""
    request = body()
    scar = request["prefetch"]["conditions"]["entry"][0]["resource"]
    if resource_type is None:
        del scar["resourceType"]
    else:
        scar["resourceType"] = resource_type
    (card,) = cards_of(post(client, json.dumps(request)))
    assert card["summary"].startswith(UNSPECIFIED)
    assert "/scar1: its resourceType does not name a FHIR R4 resource type; read as acne scarring" in card["detail"]


@pytest.mark.parametrize(
    "value",
    [{}, {"resourceType": 5}, {"resourceType": None}, {"entry": []}],
    ids=["empty-object", "number", "null", "bundle-without-resourceType"],
)
def test_garbage_in_a_search_prefetch_key_is_400_not_no_advice(client: FlaskClient, value: Any) -> None:
    response = post(client, json.dumps(set_path(body(), ("prefetch", "conditions"), value)))
    assert_error(response, 400, "invalid-request", "prefetch.conditions")


def test_a_number_where_a_fhir_date_belongs_is_an_unknown_date_never_1970(client: FlaskClient) -> None:
    iso = isotretinoin_statement()
    iso["effectivePeriod"]["end"] = 20260926
    response = post(client, json.dumps(hook_request(icepick_scar(severity="severe"), iso, FITZPATRICK)))
    warning = cards_of(response)[0]
    assert warning["summary"].startswith(NO_LAST_DOSE)
    assert "could not read effectivePeriod.end: a number where FHIR R4 has a date" in warning["detail"]
