"""A test issuer for trying the service with AUTH_MODE=required: an EC P-384 key pair, its JWKS
and a trusted-issuers file, and signed tokens for any URL. For development only.

    .venv/bin/python scripts/dev_token.py init              # -> data/dev-issuer/
    .venv/bin/python scripts/dev_token.py token http://127.0.0.1:8080/cds-services
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

DEFAULT_DIR = Path("data/dev-issuer")
ISSUER = "https://dev-ehr.example"
KID = "dev-ec384-1"


def init(directory: Path = DEFAULT_DIR) -> Path:
    """Write private.pem, jwks.json and issuers.yaml; returns the issuers file."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "private.pem").write_bytes(pem)
    (directory / "private.pem").chmod(0o600)
    public = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": KID, "use": "sig", "alg": "ES384"}
    (directory / "jwks.json").write_text(json.dumps({"keys": [public]}, indent=2) + "\n")
    # A FHIR server on this machine may be named as fhirServer (development only).
    issuers = {"issuers": [{"iss": ISSUER, "jwks_file": "jwks.json", "fhir_servers": ["loopback"]}]}
    (directory / "issuers.yaml").write_text(yaml.safe_dump(issuers, sort_keys=False))
    return directory / "issuers.yaml"


def token(audience: str, directory: Path = DEFAULT_DIR, lifetime: int = 300) -> str:
    """A token as an EHR signs it (CDS Hooks §Trusting CDS Clients) for the URL `audience`."""
    key = serialization.load_pem_private_key((directory / "private.pem").read_bytes(), password=None)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "dev-ehr-client",
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'private.pem'} is not the EC key `init` writes")
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the key pair and issuers file")
    mint = sub.add_parser("token", help="print a token for a URL (one use: jti is checked)")
    mint.add_argument("audience", help="the exact URL the token will be sent to")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if args.command == "init":
        print(f"AUTH_ISSUERS_FILE={init(args.dir)}")
    else:
        print(token(args.audience, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
