"""Trusting CDS clients (CDS Hooks 2.0.1 §Trusting CDS Clients): every call carries a JWT
signed by the EHR; verify it before anything else.

Checks, in order (each failure is a bare 401; the log names the check, never the token):
algorithm on the allow-list (never `none`, never HMAC) · `kid` present · `iss` trusted ·
`jku`, when sent, on that issuer's allow-list · key found by `kid` in the issuer's JWKS (cached,
refetched once on an unknown kid) · signature · `aud` equal to the URL called · `exp`, `iat`,
`nbf` with clock skew · `jti` present and never seen before (the replay cache lives in the
service's database, shared by every worker and replica) · `tenant`, when an allow-list is set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import yaml
from jwt import PyJWK, PyJWKClient, PyJWKSet

from service.store import Store

log = logging.getLogger("acne_scar_cds")
NEVER_ALLOWED = {"none", "HS256", "HS384", "HS512"}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class AuthConfigError(ValueError):
    """The trusted-issuer configuration is missing or malformed; the message says what to set."""


class Unauthorized(Exception):
    """A call that failed a check; `reason` is a stable word for logs and metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TrustedIssuer:
    """One EHR allowed to call: its `iss`, and where its public keys are."""

    iss: str
    jwks_url: str | None = None
    jwks_file: str | None = None
    jku_allowed: tuple[str, ...] = ()
    _clients: dict[str, PyJWKClient] = field(default_factory=dict, repr=False)
    _static: PyJWKSet | None = field(default=None, repr=False)

    def key(self, kid: str, jku: str | None, timeout: float, ttl: int) -> PyJWK:
        """The issuer's key `kid`: from the `jku` (if allowed), the JWKS URL, or the file."""
        if jku is not None:
            if jku not in self.jku_allowed:
                raise Unauthorized("jku-not-allowed")
            return self._from_url(jku, kid, timeout, ttl)
        if self.jwks_url:
            return self._from_url(self.jwks_url, kid, timeout, ttl)
        if self.jwks_file:
            return self._from_file(kid)
        raise Unauthorized("no-jwks-for-issuer")

    def _from_url(self, url: str, kid: str, timeout: float, ttl: int) -> PyJWK:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = PyJWKClient(url, cache_jwk_set=True, lifespan=ttl, timeout=timeout)
        try:
            return client.get_signing_key(kid)  # refetches the set once on an unknown kid
        except jwt.PyJWKClientConnectionError:
            raise Unauthorized("jwks-unreachable") from None
        except jwt.PyJWKClientError:
            raise Unauthorized("unknown-kid") from None

    def _from_file(self, kid: str) -> PyJWK:
        if self._static is None:
            self._static = PyJWKSet.from_dict(json.loads(Path(str(self.jwks_file)).read_text()))
        for key in self._static.keys:
            if key.key_id == kid:
                return key
        raise Unauthorized("unknown-kid")


@dataclass(frozen=True)
class AuthPolicy:
    """How callers are checked (from Settings)."""

    issuers: Mapping[str, TrustedIssuer]
    algorithms: tuple[str, ...]
    clock_skew: int
    tenants: tuple[str, ...]
    jwks_timeout: float
    jwks_ttl: int


def load_issuers(path: str | None, inline: str | None) -> dict[str, TrustedIssuer]:
    """Trusted issuers from AUTH_ISSUERS (inline JSON/YAML) or the AUTH_ISSUERS_FILE."""
    if inline:
        text = inline
    elif path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthConfigError(f"AUTH_ISSUERS_FILE={path!r} cannot be read: {exc.strerror}") from None
    else:
        return {}
    data = yaml.safe_load(text)
    entries = data.get("issuers") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AuthConfigError("trusted issuers: expected a list of {iss, jwks_url | jwks_file | jku_allowed}")
    issuers = {}
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("iss"):
            raise AuthConfigError(f"trusted issuer without iss: {entry!r}")
        if not (entry.get("jwks_url") or entry.get("jwks_file") or entry.get("jku_allowed")):
            raise AuthConfigError(f"trusted issuer {entry['iss']!r} needs jwks_url, jwks_file or jku_allowed")
        issuers[entry["iss"]] = TrustedIssuer(entry["iss"], entry.get("jwks_url"), entry.get("jwks_file"),
                                              tuple(entry.get("jku_allowed", ())))
    return issuers


def verify(token: str, audience: str, policy: AuthPolicy, store: Store) -> dict[str, Any]:
    """The token's claims if every check passes; Unauthorized(reason) otherwise."""
    try:
        # One unverified read for what picks the key (alg, kid, iss); nothing else is trusted yet.
        unread = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthorized("malformed-token") from None
    header, unverified = unread["header"], unread["payload"]
    alg = header.get("alg")
    if alg in NEVER_ALLOWED or alg not in policy.algorithms:
        raise Unauthorized("algorithm-not-allowed")
    if not header.get("kid"):
        raise Unauthorized("missing-kid")
    issuer = policy.issuers.get(str(unverified.get("iss")))
    if issuer is None:
        raise Unauthorized("untrusted-issuer")
    key = issuer.key(str(header["kid"]), header.get("jku"), policy.jwks_timeout, policy.jwks_ttl)
    claims = _decode(token, key, alg, audience, issuer.iss, policy.clock_skew)
    if policy.tenants and claims.get("tenant") not in policy.tenants:
        raise Unauthorized("tenant-not-allowed")
    if not store.remember_token(issuer.iss, str(claims["jti"]), int(claims["exp"]) + policy.clock_skew):
        raise Unauthorized("replayed-jti")
    return claims


DECODE_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not-yet-valid"),
    (jwt.InvalidAudienceError, "wrong-audience"),
    (jwt.InvalidIssuedAtError, "invalid-iat"),
    (jwt.MissingRequiredClaimError, "missing-claim"),
    (jwt.InvalidSignatureError, "bad-signature"),
    (jwt.InvalidKeyError, "key-does-not-fit-algorithm"),
]


def _decode(token: str, key: PyJWK, alg: str, audience: str, iss: str, skew: int) -> dict[str, Any]:
    try:
        # The raw key, not the PyJWK: a JWK without "alg" would otherwise be pinned to RS256 /
        # the curve's default, and the algorithm allow-list is ours to enforce.
        return jwt.decode(token, key.key, algorithms=[alg], audience=audience, issuer=iss, leeway=skew,
                          options={"require": REQUIRED_CLAIMS, "strict_aud": False})
    except jwt.PyJWTError as exc:
        reason = next((r for kind, r in DECODE_REASONS if isinstance(exc, kind)), "invalid-token")
        raise Unauthorized(reason) from None
