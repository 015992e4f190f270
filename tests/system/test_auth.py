"""Trusting CDS clients (CDS Hooks 2.0.1 §Trusting CDS Clients): the forged-token matrix, over
real HTTP against gunicorn with two workers, with keys generated here (EC P-384 and P-256, RSA,
an HMAC secret and an Ed25519 key in the trusted JWKS), the sandbox's own key pair, and FHIR
servers the caller may or may not send the service to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms
from pytest_httpserver import HTTPServer

from tests.support.fhir import icepick_scar, isotretinoin_statement, searchset
from tests.support.hooks import SERVICE_URL, hook_request
from tests.support.paths import ROOT, SANDBOX
from tests.support.servers import GUNICORN, Gunicorn, gunicorn, serving

ISSUER, JKU_ISSUER = "https://ehr.example", "https://jku-ehr.example"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC256_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_EC_KEY = ec.generate_private_key(ec.SECP384R1())
HMAC_SECRET = b"a shared secret that no CDS client should ever use"
MAX_LIFETIME, SKEW = 3600, 60  # the defaults
FHIR_AUTH = {
    "access_token": "fhir-t0ken",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "acne-scar-cds",
}


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm: dict[type, Any] = {
        ec.EllipticCurvePrivateKey: ECAlgorithm,
        rsa.RSAPrivateKey: RSAAlgorithm,
        ed25519.Ed25519PrivateKey: OKPAlgorithm,
    }
    to_jwk: Any = next(a for kind, a in algorithm.items() if isinstance(key, kind)).to_jwk
    return {**to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


JWKS = {
    "keys": [
        jwk(EC_KEY, "ec-1"),
        jwk(RSA_KEY, "rsa-1"),
        jwk(EC256_KEY, "ec256-1"),
        jwk(ED_KEY, "ed-1"),
        {"kty": "oct", "kid": "hmac-1", "k": base64.urlsafe_b64encode(HMAC_SECRET).rstrip(b"=").decode()},
    ]
}


def local_server() -> HTTPServer:
    server = HTTPServer(threaded=True)
    server.start()
    return server


@pytest.fixture(scope="module")
def jku_server() -> Iterator[HTTPServer]:
    server = local_server()
    server.expect_request("/jwks.json").respond_with_json({"keys": [jwk(OTHER_EC_KEY, "jku-1")]})
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def allowed_fhir() -> Iterator[HTTPServer]:
    """The FHIR server the trusted EHR names in its issuer entry (`fhir_servers`)."""
    server = local_server()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def stranger_fhir() -> Iterator[HTTPServer]:
    """A FHIR server no issuer names: the service must never send it a request."""
    server = local_server()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="module")
def server(tmp: Path, jku_server: HTTPServer, allowed_fhir: HTTPServer) -> Iterator[Gunicorn]:
    (tmp / "jwks.json").write_text(json.dumps(JWKS))
    issuers = [
        {
            "iss": ISSUER,
            "jwks_file": str(tmp / "jwks.json"),
            "jku_allowed": [jku_server.url_for("/ehr-keys.json")],
            "fhir_servers": [allowed_fhir.url_for("/fhir")],
        },
        {"iss": JKU_ISSUER, "jku_allowed": [jku_server.url_for("/jwks.json")]},
    ]
    yield from serving(
        tmp,
        AUTH_MODE="required",
        AUTH_ISSUERS=json.dumps(issuers),
        AUTH_TENANTS="clinic-a",
        AUTH_ALGORITHMS="ES384,RS384,PS384",
        DATABASE_URL=f"sqlite:///{tmp}/auth.sqlite3",
    )


def claims_for(server: Gunicorn, path: str = "/cds-services", **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": server.base + path,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "tenant": "clinic-a",
        "sub": "ehr-client",
        **claims,
    }


def token(
    server: Gunicorn,
    path: str = "/cds-services",
    key: Any = EC_KEY,
    alg: str = "ES384",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    payload = claims_for(server, path, **claims)
    for name in drop:
        payload.pop(name)
    header = {"kid": "ec-1" if alg.startswith("ES") else "rsa-1", "typ": "JWT", **(headers or {})}
    encoded = jwt.encode(payload, key, algorithm=alg, headers={k: v for k, v in header.items() if v})
    if header["kid"] is None:  # PyJWT adds no kid unless asked: this token has none
        assert "kid" not in jwt.get_unverified_header(encoded)
    return encoded


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, payload: str, key: Any = EC_KEY, alg: str = "ES384") -> str:
    """A token signed by `key` whose header and payload are exactly what is given: JSON PyJWT
    would refuse to write (claims of the wrong type, NaN, 1e400, an `alg` that is a list)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}".encode()
    if alg.startswith("HS"):  # PyJWT refuses to HMAC with a public key; a forger does not
        return f"{signing_input.decode()}.{b64(hmac.new(key, signing_input, hashlib.sha384).digest())}"
    algorithm = get_default_algorithms()[alg]
    return f"{signing_input.decode()}.{b64(algorithm.sign(signing_input, algorithm.prepare_key(key)))}"


def absurd(server: Gunicorn, **raw: str) -> str:
    """A valid token, ES384 by the trusted EC key, whose claims in `raw` are replaced by the
    given JSON text (e.g. exp='1e400')."""
    payload = {k: v for k, v in claims_for(server).items() if k not in raw}
    text = json.dumps(payload)[:-1] + "".join(f', "{name}": {value}' for name, value in raw.items()) + "}"
    return raw_token({"alg": "ES384", "typ": "JWT", "kid": "ec-1"}, text)


def call(
    server: Gunicorn,
    bearer: str | None,
    path: str = "/cds-services",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One call with a unique X-Request-ID, so its log lines can be found."""
    sent = {"X-Request-ID": uuid.uuid4().hex, **(headers or {})}
    if bearer is not None:
        sent["Authorization"] = f"Bearer {bearer}"
    if body is None:
        return requests.get(server.base + path, headers=sent, timeout=10)
    return requests.post(server.base + path, json=body, headers=sent, timeout=10)


def log_lines(server: Gunicorn, response: requests.Response) -> list[dict[str, Any]]:
    """The service's JSON log lines about this call."""
    wanted = response.request.headers["X-Request-ID"]
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("request_id") == wanted]


def rejection(server: Gunicorn, response: requests.Response) -> str:
    """The failing check the log gives for this call."""
    (line,) = [line for line in log_lines(server, response) if line["event"] == "auth-rejected"]
    return str(line["reason"])


def test_valid_es384_token_is_accepted(server: Gunicorn) -> None:
    assert call(server, token(server)).status_code == 200


def test_valid_rs384_token_calls_the_service(server: Gunicorn) -> None:
    bearer = token(server, SERVICE_URL, key=RSA_KEY, alg="RS384")
    response = call(server, bearer, SERVICE_URL, hook_request(icepick_scar()))
    assert response.status_code == 200
    assert response.json()["cards"]


def test_an_epic_like_token_is_accepted(server: Gunicorn, jku_server: HTTPServer) -> None:
    """Epic: RS384, `jku` to its published keys, `nbf` before `iat`, about 900 s. The key is
    among those configured for the issuer, so the (allowed) jku is never fetched."""
    now = int(time.time())
    bearer = token(
        server,
        key=RSA_KEY,
        alg="RS384",
        headers={"jku": jku_server.url_for("/ehr-keys.json")},
        nbf=now - 300,
        exp=now + 900,
    )
    assert call(server, bearer).status_code == 200
    assert not [r for r, _ in jku_server.log if r.path == "/ehr-keys.json"]


def test_audience_may_be_an_array(server: Gunicorn) -> None:
    bearer = token(server, aud=["https://other.example", server.base + "/cds-services"])
    assert call(server, bearer).status_code == 200


def test_jku_on_the_issuers_allow_list_is_followed(server: Gunicorn, jku_server: HTTPServer) -> None:
    bearer = token(
        server, key=OTHER_EC_KEY, iss=JKU_ISSUER, headers={"kid": "jku-1", "jku": jku_server.url_for("/jwks.json")}
    )
    assert call(server, bearer).status_code == 200


def hs384_with_public_key(server: Gunicorn) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the public key."""
    pem = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw_token({"alg": "HS384", "kid": "ec-1", "typ": "JWT"}, json.dumps(claims_for(server)), pem, "HS384")


def alg_none(server: Gunicorn) -> str:
    return jwt.encode(claims_for(server), "", algorithm="none", headers={"kid": "ec-1"})


def tampered(server: Gunicorn) -> str:
    head, payload, signature = token(server).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


def header_of(server: Gunicorn, **header: Any) -> str:
    """A token by the trusted EC key whose header is exactly `header`."""
    return raw_token(header, json.dumps(claims_for(server)))


FORGERIES = {
    "alg-none": (alg_none, "algorithm-not-allowed"),
    "hs384-with-public-key": (hs384_with_public_key, "algorithm-not-allowed"),
    "es256-not-allowed": (
        lambda s: token(s, key=EC256_KEY, alg="ES256", headers={"kid": "ec256-1"}),
        "algorithm-not-allowed",
    ),
    "alg-is-a-list": (lambda s: header_of(s, alg=["ES384"], kid="ec-1"), "algorithm-not-allowed"),
    "alg-is-an-object": (lambda s: header_of(s, alg={"ES384": True}, kid="ec-1"), "algorithm-not-allowed"),
    # kid / alg / key type: each alg naming a key it cannot verify with
    "rs384-naming-the-ec-kid": (
        lambda s: token(s, key=RSA_KEY, alg="RS384", headers={"kid": "ec-1"}),
        "key-does-not-fit-algorithm",
    ),
    "ps384-naming-the-ec-kid": (
        lambda s: token(s, key=RSA_KEY, alg="PS384", headers={"kid": "ec-1"}),
        "key-does-not-fit-algorithm",
    ),
    "es384-naming-the-rsa-kid": (
        lambda s: token(s, key=EC_KEY, alg="ES384", headers={"kid": "rsa-1"}),
        "key-does-not-fit-algorithm",
    ),
    "es384-naming-the-p256-kid": (
        lambda s: token(s, key=EC_KEY, alg="ES384", headers={"kid": "ec256-1"}),
        "key-does-not-fit-algorithm",
    ),
    "rs384-naming-the-hmac-kid": (
        lambda s: token(s, key=RSA_KEY, alg="RS384", headers={"kid": "hmac-1"}),
        "key-does-not-fit-algorithm",
    ),
    "es384-naming-the-ed25519-kid": (lambda s: token(s, headers={"kid": "ed-1"}), "key-does-not-fit-algorithm"),
    "rs384-by-another-key": (
        lambda s: token(s, key=rsa.generate_private_key(public_exponent=65537, key_size=2048), alg="RS384"),
        "bad-signature",
    ),
    "expired": (lambda s: token(s, iat=int(time.time()) - 900, exp=int(time.time()) - 600), "expired"),
    "not-yet-valid": (lambda s: token(s, nbf=int(time.time()) + 600), "not-yet-valid"),
    "issued-in-the-future": (
        lambda s: token(s, iat=int(time.time()) + 600, exp=int(time.time()) + 900),
        "not-yet-valid",
    ),
    "wrong-aud": (lambda s: token(s, aud="https://somewhere.else/cds-services"), "wrong-audience"),
    "aud-of-another-endpoint": (lambda s: token(s, SERVICE_URL), "wrong-audience"),
    "aud-of-1000-other-entries": (lambda s: token(s, aud=["x"] * 1000), "wrong-audience"),
    "aud-of-1000-numbers": (lambda s: absurd(s, aud=json.dumps(list(range(1000)))), "wrong-audience"),
    "unknown-iss": (lambda s: token(s, iss="https://evil.example"), "untrusted-issuer"),
    "iss-is-a-number": (lambda s: absurd(s, iss="42"), "untrusted-issuer"),
    "unknown-kid": (lambda s: token(s, headers={"kid": "nope"}), "unknown-kid"),
    "kid-is-an-object": (lambda s: header_of(s, alg="ES384", kid={"kid": "ec-1"}), "malformed-token"),
    "kid-is-empty": (lambda s: header_of(s, alg="ES384", kid=""), "missing-kid"),
    # An unknown kid could only be found at the jku, which is not on the issuer's list: never fetched.
    "jku-not-allowed": (
        lambda s: token(s, headers={"kid": "nope", "jku": "https://evil.example/jwks.json"}),
        "jku-not-allowed",
    ),
    "jku-not-allowed-signed-by-another-key": (
        lambda s: token(s, key=OTHER_EC_KEY, headers={"jku": "https://evil.example/jwks.json"}),
        "bad-signature",
    ),
    "jku-is-a-list": (
        lambda s: header_of(s, alg="ES384", kid="ec-1", jku=["https://evil.example/"]),
        "jku-not-allowed",
    ),
    "typ-is-not-jwt": (lambda s: token(s, headers={"typ": "at+jwt"}), "wrong-typ"),
    "typ-is-a-number": (lambda s: header_of(s, alg="ES384", kid="ec-1", typ=7), "wrong-typ"),
    "signed-by-another-key": (lambda s: token(s, key=OTHER_EC_KEY), "bad-signature"),
    "tampered-payload": (tampered, "bad-signature"),
    "missing-jti": (lambda s: token(s, drop=("jti",)), "missing-claim"),
    "missing-exp": (lambda s: token(s, drop=("exp",)), "missing-claim"),
    "missing-iat": (lambda s: token(s, drop=("iat",)), "missing-claim"),
    "missing-kid": (lambda s: token(s, headers={"kid": None}), "missing-kid"),
    "wrong-tenant": (lambda s: token(s, tenant="clinic-b"), "tenant-not-allowed"),
    "no-tenant": (lambda s: token(s, drop=("tenant",)), "tenant-not-allowed"),
    "malformed": (lambda s: "not.a.jwt", "malformed-token"),
    "payload-is-a-list": (lambda s: raw_token({"alg": "ES384", "kid": "ec-1"}, "[1, 2]"), "malformed-token"),
    "claims-nested-1500-deep": (
        lambda s: raw_token({"alg": "ES384", "kid": "ec-1"}, "[" * 1500 + "]" * 1500),
        "malformed-token",
    ),
    # absurd claim values (RFC 7519 §2: a NumericDate is a JSON number)
    "exp-10-to-the-12": (lambda s: token(s, exp=10**12), "lifetime-too-long"),
    "exp-a-year-ahead": (lambda s: token(s, exp=int(time.time()) + 366 * 86400), "lifetime-too-long"),
    "exp-just-over-the-maximum": (
        lambda s: token(s, exp=int(time.time()) + MAX_LIFETIME + 1, iat=int(time.time())),
        "lifetime-too-long",
    ),
    "exp-1e300": (lambda s: absurd(s, exp="1e300"), "lifetime-too-long"),
    "exp-1e400": (lambda s: absurd(s, exp="1e400"), "invalid-claim-format"),
    "exp-nan": (lambda s: absurd(s, exp="NaN"), "invalid-claim-format"),
    "exp-negative": (lambda s: token(s, exp=-1), "expired"),
    "exp-a-word": (lambda s: absurd(s, exp='"soon"'), "invalid-claim-format"),
    "exp-digits-in-a-string": (lambda s: absurd(s, exp=json.dumps(str(int(time.time()) + 300))), "invalid-exp"),
    "exp-a-list": (lambda s: absurd(s, exp="[1]"), "invalid-claim-format"),
    "exp-before-iat": (lambda s: token(s, iat=int(time.time()) + 30, exp=int(time.time()) + 20), "exp-before-iat"),
    "iat-negative": (lambda s: token(s, iat=-1), "lifetime-too-long"),
    "iat-10-to-the-12": (lambda s: token(s, iat=10**12), "not-yet-valid"),
    "iat-a-word": (lambda s: absurd(s, iat='"now"'), "invalid-iat"),
    "iat-digits-in-a-string": (lambda s: absurd(s, iat=json.dumps(str(int(time.time())))), "invalid-iat"),
    "iat-true": (lambda s: absurd(s, iat="true"), "invalid-iat"),
    "nbf-10-to-the-12": (lambda s: token(s, nbf=10**12), "not-yet-valid"),
    "nbf-a-word": (lambda s: absurd(s, nbf='"later"'), "invalid-claim-format"),
    "nbf-digits-in-a-string": (lambda s: absurd(s, nbf='"0"'), "invalid-nbf"),
    "nbf-an-object": (lambda s: absurd(s, nbf="{}"), "invalid-claim-format"),
    "jti-empty": (lambda s: token(s, jti=""), "invalid-jti"),
    "jti-blank": (lambda s: token(s, jti="   "), "invalid-jti"),
    "jti-a-number": (lambda s: absurd(s, jti="12345"), "invalid-jti"),
    "jti-a-list": (lambda s: absurd(s, jti='["a"]'), "invalid-jti"),
    "no-authorization-header": (lambda s: None, "no-bearer-token"),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_or_broken_token_is_a_401_naming_the_check_in_the_log(server: Gunicorn, name: str) -> None:
    make, reason = FORGERIES[name]
    bearer = make(server)
    response = call(server, bearer)
    assert response.status_code == 401, response.text
    # RFC 6750 §3: invalid_token for a token that fails; no error code when none was sent (§3.1).
    assert response.headers["WWW-Authenticate"] == ('Bearer error="invalid_token"' if bearer else "Bearer")
    assert response.json() == {"error": "unauthorized", "message": "The request is not authorised."}
    assert rejection(server, response) == reason
    log = server.log.read_text()
    assert "Traceback" not in log
    if bearer:
        assert bearer not in log


def test_a_configured_key_verifies_whatever_jku_the_token_names(server: Gunicorn) -> None:
    """Issue "sandbox end to end" item 3: keys configured out of band come first; the `jku` is a
    hint, and a token signed by the trusted key is authentic whatever URL it names (the sandbox
    names one a closed network cannot reach). The jku is not fetched: no such host answers here."""
    assert call(server, token(server, headers={"jku": "https://evil.example/jwks.json"})).status_code == 200


def test_a_token_with_a_negative_nbf_is_accepted(server: Gunicorn) -> None:
    """`nbf` in 1969 says nothing wrong: the token is valid from long ago (RFC 7519 §4.1.5)."""
    assert call(server, token(server, nbf=-1)).status_code == 200


def test_aud_is_never_taken_from_the_host_header(server: Gunicorn) -> None:
    """A token the EHR signed for another CDS service, replayed here with that service's Host,
    is refused: `aud` is compared with PUBLIC_BASE_URL only."""
    bearer = token(server, aud="http://other-cds.example/cds-services")
    response = call(server, bearer, headers={"Host": "other-cds.example"})
    assert response.status_code == 401
    assert rejection(server, response) == "wrong-audience"


def seen_tokens_until(tmp: Path) -> list[datetime]:
    """When each row of the replay table expires (SQLite stores UTC without the zone)."""
    with sqlite3.connect(tmp / "auth.sqlite3") as db:
        rows = db.execute("SELECT expires_at FROM seen_tokens").fetchall()
    return [datetime.fromisoformat(row[0]).replace(tzinfo=UTC) for row in rows]


def test_the_replay_table_never_holds_a_jti_longer_than_the_maximum_lifetime(server: Gunicorn, tmp: Path) -> None:
    """AUTH_MAX_TOKEN_LIFETIME: a token of exactly the maximum lifetime is accepted, and no row of
    the replay table outlives the maximum lifetime (plus the clock skew a token is given on
    `exp`, and on `iat`), whatever the tokens said."""
    now = int(time.time())
    assert call(server, token(server, iat=now, exp=now + MAX_LIFETIME)).status_code == 200
    for forged in ("exp-10-to-the-12", "exp-a-year-ahead", "exp-1e300"):
        assert call(server, FORGERIES[forged][0](server)).status_code == 401
    latest = max(seen_tokens_until(tmp))
    assert latest.timestamp() >= now + MAX_LIFETIME  # the long token is remembered until its exp
    assert latest.timestamp() <= time.time() + MAX_LIFETIME + 2 * SKEW


def test_replayed_jti_is_refused(server: Gunicorn) -> None:
    bearer = token(server)
    assert call(server, bearer).status_code == 200
    assert call(server, bearer).status_code == 401


def test_replay_is_caught_across_worker_processes(server: Gunicorn) -> None:
    """The replay cache is the database, not a worker's memory: of 20 concurrent uses of one
    token, spread over both workers, exactly one succeeds."""
    bearer = token(server)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: call(server, bearer).status_code, range(20)))
    assert sorted(statuses) == [200] + [401] * 19


def test_health_and_preflight_need_no_token(server: Gunicorn) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.yaml"):
        assert requests.get(server.base + path, timeout=5).status_code == 200, path
    preflight = requests.options(
        server.base + SERVICE_URL,
        timeout=5,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200


# ----- the FHIR servers a trusted EHR may send the service to ----------------------------------


def fetching_call(fhir_server: str, **fhir: Any) -> dict[str, Any]:
    """A patient-view call whose medication statements must be fetched from `fhir_server`."""
    return hook_request(icepick_scar(), omit=("medicationStatements",), fhirServer=fhir_server, **fhir)


def test_the_issuers_fhir_server_is_fetched_from_with_the_token(server: Gunicorn, allowed_fhir: HTTPServer) -> None:
    allowed_fhir.expect_request(
        "/fhir/MedicationStatement", headers={"Authorization": "Bearer fhir-t0ken"}
    ).respond_with_json(searchset(isotretinoin_statement()))
    body = fetching_call(allowed_fhir.url_for("/fhir"), fhirAuthorization=FHIR_AUTH)
    response = call(server, token(server, SERVICE_URL), SERVICE_URL, body)
    assert response.status_code == 200, response.text
    assert any("2027-03-26" in c["summary"] for c in response.json()["cards"])


def test_a_fhir_server_the_issuer_does_not_list_is_never_fetched_from(
    server: Gunicorn, stranger_fhir: HTTPServer
) -> None:
    """The EHR's token never leaves for a server its issuer entry does not name: 412 naming
    the reason, and the server sees no request at all."""
    body = fetching_call(stranger_fhir.url_for("/fhir"), fhirAuthorization=FHIR_AUTH)
    response = call(server, token(server, SERVICE_URL), SERVICE_URL, body)
    assert response.status_code == 412, response.text
    (missing,) = response.json()["missing"]
    assert missing["key"] == "medicationStatements"
    assert missing["reason"] == (
        f"fhirServer is not among the FHIR servers allowed by the fhir_servers of issuer "
        f"'{ISSUER}'; nothing was fetched from it"
    )
    assert stranger_fhir.log == []


def test_an_issuer_without_fhir_servers_may_send_the_service_nowhere(
    server: Gunicorn, jku_server: HTTPServer, allowed_fhir: HTTPServer
) -> None:
    allowed_fhir.clear_log()
    bearer = token(
        server,
        SERVICE_URL,
        key=OTHER_EC_KEY,
        iss=JKU_ISSUER,
        headers={"kid": "jku-1", "jku": jku_server.url_for("/jwks.json")},
    )
    response = call(server, bearer, SERVICE_URL, fetching_call(allowed_fhir.url_for("/fhir")))
    assert response.status_code == 412
    assert "fhir_servers of issuer 'https://jku-ehr.example'" in response.json()["missing"][0]["reason"]
    assert allowed_fhir.log == []


def test_a_complete_prefetch_naming_an_unlisted_fhir_server_still_gets_its_cards(
    server: Gunicorn, stranger_fhir: HTTPServer
) -> None:
    """Nothing needs fetching, so nothing is fetched, and nothing is refused."""
    body = hook_request(icepick_scar(), fhirServer=stranger_fhir.url_for("/fhir"), fhirAuthorization=FHIR_AUTH)
    response = call(server, token(server, SERVICE_URL), SERVICE_URL, body)
    assert response.status_code == 200
    assert response.json()["cards"]
    assert stranger_fhir.log == []


# ----- the CDS Hooks sandbox, offline ------------------------------------------------------------

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KEY = serialization.load_pem_private_key(
    (ROOT / "tests" / "sandbox" / "sandbox-ecprivkey.pem").read_bytes(), password=None
)


def sandbox_token(url: str, key: Any = SANDBOX_KEY, kid: str = SANDBOX_KID) -> str:
    """A token exactly as the sandbox signs it (tests/sandbox/README.md)."""
    now = int(time.time())
    return jwt.encode(
        {"iss": SANDBOX_ISS, "aud": url, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())},
        key,
        algorithm="ES384",
        headers={"typ": "JWT", "kid": kid, "jku": SANDBOX_JKU},
    )


@pytest.fixture(scope="module")
def sandbox_trusted(tmp: Path) -> Iterator[Gunicorn]:
    """The service trusting the sandbox through deploy/trusted-issuers.sandbox.yaml, on a
    machine that cannot reach the sandbox: every https request of the server goes to a closed
    proxy port."""
    closed = "http://127.0.0.1:9"
    env = {
        "AUTH_MODE": "required",
        "AUTH_ISSUERS_FILE": str(ROOT / "deploy" / "trusted-issuers.sandbox.yaml"),
        "DATABASE_URL": f"sqlite:///{tmp}/sandbox.sqlite3",
        "WEB_CONCURRENCY": "2",
        "CDS_TODAY": "2026-12-01",
        "https_proxy": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "",
        "NO_PROXY": "",
    }
    with gunicorn(env, tmp / "sandbox-gunicorn.log") as running:
        yield running


def test_the_sandboxs_signed_calls_pass_offline(sandbox_trusted: Gunicorn) -> None:
    """Issue 13: the key configured out of band is used first; the jku is not fetched."""
    server = sandbox_trusted
    assert call(server, sandbox_token(server.base + "/cds-services")).status_code == 200
    response = call(server, sandbox_token(server.base + SERVICE_URL), SERVICE_URL, hook_request(icepick_scar()))
    assert response.status_code == 200
    assert response.json()["cards"]


SANDBOX_CAPTURES = SANDBOX
SANDBOX_SERVICES = {
    "order-select": "/cds-services/acne-scar-order-select",
    "order-sign": "/cds-services/acne-scar-order-sign",
    "patient-view": "/cds-services/acne-scar-treatment",
}


@pytest.mark.parametrize(
    ("capture", "first_card"),
    [
        ("order-select-isotretinoin-chosen", "Retinoid ordered for a patient recorded as pregnant"),
        ("order-sign-isotretinoin", "Retinoid ordered for a patient recorded as pregnant"),
        ("order-select-on-open", None),
        ("patient-view-isotretinoin-2-months", "Isotretinoin last dose 2026-09-26"),
    ],
)
def test_the_sandboxs_captured_calls_signed_as_it_signs_them(
    sandbox_trusted: Gunicorn, capture: str, first_card: str | None
) -> None:
    """What the real sandbox sends (tests/sandbox/), signed exactly as it signs, over gunicorn
    with two workers and AUTH_MODE=required: 200 and the card Rx View / Rx Sign must show."""
    body = json.loads((SANDBOX_CAPTURES / f"{capture}.json").read_text(encoding="utf-8"))
    path = SANDBOX_SERVICES[body["hook"]]
    response = call(sandbox_trusted, sandbox_token(sandbox_trusted.base + path), path, body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    if first_card is None:
        assert cards == []
    else:
        assert cards[0]["summary"].startswith(first_card)


def test_a_jwks_file_alone_trusts_the_sandbox_offline(tmp_path: Path) -> None:
    """No jku_allowed at all: the configured key verifies the sandbox's token, whose jku (which
    this machine cannot reach) is never fetched."""
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text(
        f"issuers:\n  - iss: {SANDBOX_ISS}\n    jwks_file: {ROOT / 'deploy' / 'sandbox-jwks.json'}\n"
        "    fhir_servers: [loopback]\n"
    )
    closed = "http://127.0.0.1:9"
    env = {
        "AUTH_MODE": "required",
        "AUTH_ISSUERS_FILE": str(issuers),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "WEB_CONCURRENCY": "1",
        "https_proxy": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "",
        "NO_PROXY": "",
    }
    with gunicorn(env, tmp_path / "gunicorn.log") as server:
        assert call(server, sandbox_token(server.base + "/cds-services")).status_code == 200


def test_a_token_naming_the_sandboxs_kid_signed_by_another_key_is_refused(sandbox_trusted: Gunicorn) -> None:
    response = call(sandbox_trusted, sandbox_token(sandbox_trusted.base + "/cds-services", key=OTHER_EC_KEY))
    assert response.status_code == 401
    assert rejection(sandbox_trusted, response) == "bad-signature"


def test_an_unknown_sandbox_kid_falls_back_to_the_allowed_jku(sandbox_trusted: Gunicorn) -> None:
    """A kid not among the configured keys is looked up at the jku, which this machine cannot
    reach: 401, and the log says why."""
    response = call(sandbox_trusted, sandbox_token(sandbox_trusted.base + "/cds-services", kid="rotated-key"))
    assert response.status_code == 401
    assert rejection(sandbox_trusted, response) == "jwks-unreachable"


# ----- start-up: refuse, once and clearly ------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_MODE": "required", "PUBLIC_BASE_URL": "https://cds.example"}, "no trusted issuer is configured"),
        (
            {
                "AUTH_MODE": "required",
                "AUTH_ISSUERS_FILE": "deploy/trusted-issuers.sandbox.yaml",
                "PUBLIC_BASE_URL": "",
            },
            "PUBLIC_BASE_URL is not set",
        ),
        ({"AUTH_MODE": "maybe"}, "AUTH_MODE='maybe' is not valid"),
        ({"FHIR_SERVERS_ALLOWED": "ftp://files.example"}, "FHIR_SERVERS_ALLOWED='ftp://files.example' is not valid"),
    ],
    ids=["no-issuers", "no-public-base-url", "bad-auth-mode", "bad-fhir-server"],
)
def test_gunicorn_refuses_a_bad_setting_once_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """Checked in the master before workers fork: one line saying what to set, no traceback per
    worker, and a non-zero exit."""
    full_env = {
        "PATH": "/usr/bin:/bin",
        "HOST": "127.0.0.1",
        "PORT": "9",
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        **env,
    }
    done = subprocess.run(
        [str(GUNICORN), "-c", "service/gunicorn_conf.py", "service.app:create_app()"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    said = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert len(said) == 1 and message in said[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "Booting worker" not in done.stderr


def test_readme_flow_with_the_dev_issuer(tmp_path: Path) -> None:
    """README 'Registering with an EHR': init a test issuer, start with AUTH_MODE=required,
    call with a minted token."""
    from scripts import dev_token

    issuers = dev_token.init(tmp_path / "dev-issuer")
    env = {
        "AUTH_MODE": "required",
        "AUTH_ISSUERS_FILE": str(issuers),
        "DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3",
        "WEB_CONCURRENCY": "1",
    }
    with gunicorn(env, tmp_path / "gunicorn.log") as running:
        url = running.base + "/cds-services"
        bearer = dev_token.token(url, tmp_path / "dev-issuer")
        assert requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10).status_code == 200
        assert requests.get(url, timeout=10).status_code == 401
