"""Trusting CDS clients, at start-up: a service that requires auth but trusts nobody, or whose
trusted issuers are misconfigured, refuses to start, naming what to set; the replay check with
its database down is a 503 (tests/system/test_auth.py checks tokens against a real gunicorn)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from service.app import create_app
from service.auth import AuthConfigError, load_issuers
from service.settings import Settings, SettingsError
from tests.support.paths import ROOT

ISSUER = "https://ehr.example"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"


def test_required_auth_without_issuers_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="AUTH_MODE=required but no trusted issuer is configured"):
        create_app(replace(settings, auth_mode="required", public_base_urls=("https://cds.example",)))


def test_required_auth_without_public_base_url_refuses_to_start(settings: Settings, tmp_path: Path) -> None:
    from scripts import dev_token

    issuers = dev_token.init(tmp_path / "issuer")
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL is not set: set it to the URL the EHR calls"):
        create_app(replace(settings, auth_mode="required", auth_issuers_file=str(issuers)))


def test_bad_auth_settings_are_refused_at_start() -> None:
    for env, named in [
        ({"AUTH_ALGORITHMS": "HS256"}, "AUTH_ALGORITHMS='HS256'"),
        ({"AUTH_MODE": "maybe"}, "AUTH_MODE='maybe'"),
        ({"AUTH_MAX_TOKEN_LIFETIME": "0"}, "AUTH_MAX_TOKEN_LIFETIME='0'"),
        ({"PUBLIC_BASE_URL": "cds.hospital.org"}, "PUBLIC_BASE_URL='cds.hospital.org'"),
    ]:
        with pytest.raises(SettingsError, match=named):
            Settings.from_env(env)
    assert Settings.from_env({"PUBLIC_BASE_URL": "https://a.example/, https://b.example"}).public_base_urls == (
        "https://a.example",
        "https://b.example",
    )


def test_issuers_file_that_cannot_be_read_is_named(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="AUTH_ISSUERS_FILE="):
        create_app(replace(settings, auth_mode="required", auth_issuers_file=str(tmp_path / "nope.yaml")))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"iss": ISSUER, "jwks_file": "missing.json"}, "jwks_file .*missing.json' cannot be read"),
        ({"iss": ISSUER, "jwks_file": "private.json"}, "holds a private key"),
        ({"iss": ISSUER, "jwks_file": "garbage.json"}, "is not a usable JWK Set"),
        ({"iss": ISSUER, "jwks_url": "file:///etc/passwd"}, "is not an http\\(s\\) URL"),
        ({"iss": ISSUER, "jku_allowed": "https://ehr.example/jwks"}, "jku_allowed must be a list of strings"),
        (
            {"iss": ISSUER, "jku_allowed": ["https://ehr.example/jwks"], "fhir_servers": ["ehr.example/fhir"]},
            "fhir_servers: 'ehr.example/fhir' is not a FHIR base URL",
        ),
        ({"iss": ISSUER, "jwks_uri": "https://ehr.example/jwks"}, "unknown field\\(s\\) jwks_uri"),
    ],
    ids=[
        "missing-jwks-file",
        "private-key",
        "not-a-jwks",
        "file-url",
        "jku-not-a-list",
        "bad-fhir-server",
        "misspelt-field",
    ],
)
def test_a_broken_issuer_entry_stops_the_boot_naming_it(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    (tmp_path / "private.json").write_text(
        json.dumps({"keys": [{**ECAlgorithm.to_jwk(EC_KEY, as_dict=True), "kid": "k"}]})
    )
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "issuers.yaml").write_text(json.dumps([entry]))
    with pytest.raises(AuthConfigError, match=message):
        load_issuers(str(tmp_path / "issuers.yaml"), None)


def test_a_relative_jwks_file_is_read_from_the_issuers_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the folder of the file
    issuers = load_issuers(str(ROOT / "deploy" / "trusted-issuers.sandbox.yaml"), None)
    keys = issuers[SANDBOX_ISS].keys
    assert keys is not None and [k.key_id for k in keys.keys] == [SANDBOX_KID]


def test_database_down_during_the_replay_check_is_503(settings: Settings, tmp_path: Path) -> None:
    """The jti check needs the database: an outage is 503 (retry), never a 500 or a pass."""
    from scripts import dev_token
    from scripts.postgres import free_port

    issuers = dev_token.init(tmp_path / "issuer")
    down = f"postgresql+psycopg://cds@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    app = create_app(
        replace(
            settings,
            auth_mode="required",
            auth_issuers_file=str(issuers),
            public_base_urls=("http://localhost",),
            database_url=down,
            migrate_on_start=False,
        )
    )
    bearer = dev_token.token("http://localhost/cds-services", tmp_path / "issuer")
    response = app.test_client().get("/cds-services", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "store-unavailable"
