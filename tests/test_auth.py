"""Trusting CDS clients (CDS Hooks 2.0.1 §Trusting CDS Clients): the forged-token matrix, over
real HTTP against gunicorn with two workers, with keys generated here (EC P-384 and RSA)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer

from service.app import create_app
from service.settings import Settings, SettingsError
from tests.hookdata import SERVICE_URL, hook_request, icepick_scar
from tests.servers import Gunicorn, gunicorn

ISSUER, JKU_ISSUER = "https://ehr.example", "https://jku-ehr.example"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC256_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP384R1())


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    data = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk(EC_KEY, "ec-1"), jwk(RSA_KEY, "rsa-1"), jwk(EC256_KEY, "ec256-1")]}


@pytest.fixture(scope="module")
def jku_server() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()
    server.expect_request("/jwks.json").respond_with_json({"keys": [jwk(OTHER_EC_KEY, "jku-1")]})
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, jku_server: HTTPServer) -> Iterator[Gunicorn]:
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "jwks.json").write_text(json.dumps(JWKS))
    issuers = [{"iss": ISSUER, "jwks_file": str(tmp / "jwks.json")},
               {"iss": JKU_ISSUER, "jku_allowed": [jku_server.url_for("/jwks.json")]}]
    env = {"AUTH_MODE": "required", "AUTH_ISSUERS": json.dumps(issuers), "AUTH_TENANTS": "clinic-a",
           "DATABASE_URL": f"sqlite:///{tmp}/auth.sqlite3", "WEB_CONCURRENCY": "2",
           "CDS_TODAY": "2026-11-26"}
    with gunicorn(env, tmp / "gunicorn.log") as running:
        yield running


def token(server: Gunicorn, path: str = "/cds-services", key: Any = EC_KEY, alg: str = "ES384",
          headers: dict[str, Any] | None = None, drop: tuple[str, ...] = (), **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": server.base + path, "iat": now, "exp": now + 300,
               "jti": str(uuid.uuid4()), "tenant": "clinic-a", "sub": "ehr-client", **claims}
    for name in drop:
        payload.pop(name)
    header = {"kid": "ec-1" if alg.startswith("ES") else "rsa-1", "typ": "JWT", **(headers or {})}
    encoded = jwt.encode(payload, key, algorithm=alg, headers={k: v for k, v in header.items() if v})
    if header["kid"] is None:  # PyJWT adds no kid unless asked: this token has none
        assert "kid" not in jwt.get_unverified_header(encoded)
    return encoded


def discovery(server: Gunicorn, bearer: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return requests.get(server.base + "/cds-services", headers=headers, timeout=10)


def test_valid_es384_token_is_accepted(server: Gunicorn) -> None:
    assert discovery(server, token(server)).status_code == 200


def test_valid_rs384_token_calls_the_service(server: Gunicorn) -> None:
    bearer = token(server, SERVICE_URL, key=RSA_KEY, alg="RS384")
    response = requests.post(server.base + SERVICE_URL, json=hook_request(icepick_scar()),
                             headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["cards"]


def test_audience_may_be_an_array(server: Gunicorn) -> None:
    bearer = token(server, aud=["https://other.example", server.base + "/cds-services"])
    assert discovery(server, bearer).status_code == 200


def test_jku_on_the_issuers_allow_list_is_followed(server: Gunicorn, jku_server: HTTPServer) -> None:
    bearer = token(server, key=OTHER_EC_KEY, iss=JKU_ISSUER,
                   headers={"kid": "jku-1", "jku": jku_server.url_for("/jwks.json")})
    assert discovery(server, bearer).status_code == 200


def hs384_with_public_key(server: Gunicorn) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the public key."""
    pem = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": server.base + "/cds-services", "iat": now, "exp": now + 300,
               "jti": str(uuid.uuid4()), "tenant": "clinic-a"}
    header = json.dumps({"alg": "HS384", "kid": "ec-1", "typ": "JWT"}).encode()
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha384).digest()
    return f"{signing_input}.{b64(signature)}"


def alg_none(server: Gunicorn) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": server.base + "/cds-services", "iat": now, "exp": now + 300,
                       "jti": str(uuid.uuid4()), "tenant": "clinic-a"}, None, algorithm="none",
                      headers={"kid": "ec-1"})


def tampered(server: Gunicorn) -> str:
    head, payload, signature = token(server).split(".")
    import base64
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


FORGERIES = {
    "alg-none": (alg_none, "algorithm-not-allowed"),
    "hs384-with-public-key": (hs384_with_public_key, "algorithm-not-allowed"),
    "es256-not-allowed": (lambda s: token(s, key=EC256_KEY, alg="ES256", headers={"kid": "ec256-1"}),
                          "algorithm-not-allowed"),
    "expired": (lambda s: token(s, iat=int(time.time()) - 900, exp=int(time.time()) - 600), "expired"),
    "not-yet-valid": (lambda s: token(s, nbf=int(time.time()) + 600), "not-yet-valid"),
    "issued-in-the-future": (lambda s: token(s, iat=int(time.time()) + 600, exp=int(time.time()) + 900),
                             "not-yet-valid"),
    "wrong-aud": (lambda s: token(s, aud="https://somewhere.else/cds-services"), "wrong-audience"),
    "aud-of-another-endpoint": (lambda s: token(s, SERVICE_URL), "wrong-audience"),
    "unknown-iss": (lambda s: token(s, iss="https://evil.example"), "untrusted-issuer"),
    "unknown-kid": (lambda s: token(s, headers={"kid": "nope"}), "unknown-kid"),
    "jku-not-allowed": (lambda s: token(s, headers={"jku": "https://evil.example/jwks.json"}), "jku-not-allowed"),
    "signed-by-another-key": (lambda s: token(s, key=OTHER_EC_KEY), "bad-signature"),
    "tampered-payload": (tampered, "bad-signature"),
    "missing-jti": (lambda s: token(s, drop=("jti",)), "missing-claim"),
    "missing-exp": (lambda s: token(s, drop=("exp",)), "missing-claim"),
    "missing-kid": (lambda s: token(s, headers={"kid": None}), "missing-kid"),
    "wrong-tenant": (lambda s: token(s, tenant="clinic-b"), "tenant-not-allowed"),
    "no-tenant": (lambda s: token(s, drop=("tenant",)), "tenant-not-allowed"),
    "malformed": (lambda s: "not.a.jwt", "malformed-token"),
    "no-authorization-header": (lambda s: None, "no-bearer-token"),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_or_broken_token_is_a_bare_401(server: Gunicorn, name: str) -> None:
    make, reason = FORGERIES[name]
    bearer = make(server)
    response = discovery(server, bearer)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "unauthorized", "message": "The request is not authorised."}
    log = server.log.read_text()
    assert f'"reason": "{reason}"' in log
    if bearer:
        assert bearer not in log


def test_replayed_jti_is_refused(server: Gunicorn) -> None:
    bearer = token(server)
    assert discovery(server, bearer).status_code == 200
    assert discovery(server, bearer).status_code == 401


def test_replay_is_caught_across_worker_processes(server: Gunicorn) -> None:
    """The replay cache is the database, not a worker's memory: of 20 concurrent uses of one
    token, spread over both workers, exactly one succeeds."""
    bearer = token(server)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: discovery(server, bearer).status_code, range(20)))
    assert sorted(statuses) == [200] + [401] * 19


def test_health_and_preflight_need_no_token(server: Gunicorn) -> None:
    assert requests.get(server.base + "/healthz", timeout=5).status_code == 200
    preflight = requests.options(server.base + SERVICE_URL, timeout=5, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200


def test_required_auth_without_issuers_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="AUTH_MODE=required but no trusted issuer is configured"):
        create_app(replace(settings, auth_mode="required"))


def test_bad_auth_settings_are_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="AUTH_ALGORITHMS='HS256'"):
        Settings.from_env({"AUTH_ALGORITHMS": "HS256"})
    with pytest.raises(SettingsError, match="AUTH_MODE='maybe'"):
        Settings.from_env({"AUTH_MODE": "maybe"})


def test_issuers_file_that_cannot_be_read_is_named(settings: Settings, tmp_path: Path) -> None:
    from service.auth import AuthConfigError
    with pytest.raises(AuthConfigError, match="AUTH_ISSUERS_FILE="):
        create_app(replace(settings, auth_mode="required", auth_issuers_file=str(tmp_path / "nope.yaml")))


def test_readme_flow_with_the_dev_issuer(tmp_path: Path) -> None:
    """README 'Registering with an EHR': init a test issuer, start with AUTH_MODE=required,
    call with a minted token."""
    from scripts import dev_token

    issuers = dev_token.init(tmp_path / "dev-issuer")
    env = {"AUTH_MODE": "required", "AUTH_ISSUERS_FILE": str(issuers),
           "DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3", "WEB_CONCURRENCY": "1"}
    with gunicorn(env, tmp_path / "gunicorn.log") as running:
        url = running.base + "/cds-services"
        bearer = dev_token.token(url, tmp_path / "dev-issuer")
        assert requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10).status_code == 200
        assert requests.get(url, timeout=10).status_code == 401


def test_database_down_during_the_replay_check_is_503(settings: Settings, tmp_path: Path) -> None:
    """The jti check needs the database: an outage is 503 (retry), never a 500 or a pass."""
    from scripts import dev_token
    from scripts.postgres import free_port

    issuers = dev_token.init(tmp_path / "issuer")
    down = f"postgresql+psycopg://cds@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    app = create_app(replace(settings, auth_mode="required", auth_issuers_file=str(issuers),
                             database_url=down, migrate_on_start=False))
    bearer = dev_token.token("http://localhost/cds-services", tmp_path / "issuer")
    response = app.test_client().get("/cds-services", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "store-unavailable"
