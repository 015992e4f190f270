"""Trusting CDS clients (CDS Hooks 2.0.1 §Trusting CDS Clients): every call carries a JWT
signed by the EHR; verify it before anything else.

Checks, in order (each failure is a 401; the log names the check, never the token):
`alg` a string on the allow-list (never `none`, never HMAC) · `kid` a non-empty string · `typ`,
when sent, `JWT` · `iss` trusted · the key `kid`: first among the keys configured out of band
(the issuer's JWKS file, then its JWKS URL), and only then at the `jku`, which must be on that
issuer's allow-list · the key's type fits `alg` (EC for ES*, RSA for RS*/PS*) · signature ·
`aud` one of the service's public URLs plus the path called · `exp`, `iat`, `nbf` numbers, with
clock skew · `exp - iat` above 0 and at most AUTH_MAX_TOKEN_LIFETIME · `jti` a non-empty string
never seen before (the replay cache lives in the service's database, shared by every worker and
replica, and holds a `jti` until `exp` + skew) · `tenant`, when an allow-list is set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK, PyJWKClient, PyJWKSet

from service.errors import Unauthorized
from service.fhir_servers import AllowedFhirServers, check_entry
from service.settings import SettingsError
from service.store import Store

NEVER_ALLOWED = {"none", "HS256", "HS384", "HS512"}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
# The key type each algorithm family verifies with (RFC 7518 §3.1): an RS384 token naming an
# EC key is refused here, before PyJWT is handed a key it cannot use.
KEY_TYPES: dict[str, type] = {"ES": EllipticCurvePublicKey, "RS": RSAPublicKey, "PS": RSAPublicKey}
ISSUER_FIELDS = {"iss", "jwks_url", "jwks_file", "jku_allowed", "fhir_servers"}


class AuthConfigError(SettingsError):
    """The trusted-issuer configuration is missing or malformed; the message says what to set."""


@dataclass
class TrustedIssuer:
    """One EHR allowed to call: its `iss`, where its public keys are, and the FHIR servers it
    may send the service to."""

    iss: str
    jwks_url: str | None
    keys: PyJWKSet | None  # from `jwks_file`, read at start-up
    jku_allowed: tuple[str, ...]
    fhir_servers: AllowedFhirServers
    _clients: dict[str, PyJWKClient] = field(default_factory=dict, repr=False)

    def key(self, kid: str, jku: str | None, timeout: float, ttl: int) -> PyJWK:
        """The issuer's key `kid`. Keys configured out of band come first (CDS Hooks §Trusting
        CDS Clients: the JWK Set may be communicated out of band), whatever `jku` the token
        names: a token is trusted for the key that signed it, never for the URL it points at (the
        CDS Hooks sandbox names a `jku` that a closed network cannot reach). A `jku` is fetched
        only when `kid` is not among those keys and the `jku` is on the issuer's allow-list."""
        for key in self.keys.keys if self.keys is not None else ():
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        allowed = jku is None or jku in self.jku_allowed
        failure = "unknown-kid" if allowed else "jku-not-allowed"
        for url in dict.fromkeys(u for u in (self.jwks_url, jku if allowed else None) if u):  # JWKS URL first
            try:
                return self._from_url(url, kid, timeout, ttl)
            except Unauthorized as exc:  # report an unreachable or unusable set over "unknown kid"
                failure = exc.reason if failure in ("unknown-kid", "jku-not-allowed") else failure
        raise Unauthorized(failure)

    def _from_url(self, url: str, kid: str, timeout: float, ttl: int) -> PyJWK:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = PyJWKClient(url, cache_jwk_set=True, lifespan=ttl, timeout=timeout)
        try:
            return client.get_signing_key(kid)  # refetches the set on an unknown kid (30 s cooldown)
        except jwt.PyJWKClientConnectionError:
            raise Unauthorized("jwks-unreachable") from None
        except jwt.PyJWKClientError:
            raise Unauthorized("unknown-kid") from None
        except (jwt.PyJWTError, ValueError):  # a set without usable keys, a body that is not JSON
            raise Unauthorized("jwks-unusable") from None


@dataclass(frozen=True)
class AuthPolicy:
    """How callers are checked (from Settings)."""

    issuers: Mapping[str, TrustedIssuer]
    algorithms: tuple[str, ...]
    clock_skew: int
    max_lifetime: int
    tenants: tuple[str, ...]
    public_base_urls: tuple[str, ...]
    jwks_timeout: float
    jwks_ttl: int


def load_issuers(path: str | None, inline: str | None) -> dict[str, TrustedIssuer]:
    """Trusted issuers from AUTH_ISSUERS (inline JSON/YAML) or the AUTH_ISSUERS_FILE. A
    relative `jwks_file` is read from the issuers file's folder (inline: the working folder)."""
    if inline:
        text, folder = inline, Path.cwd()
    elif path:
        try:
            text, folder = Path(path).read_text(encoding="utf-8"), Path(path).resolve().parent
        except OSError as exc:
            raise AuthConfigError(f"AUTH_ISSUERS_FILE={path!r} cannot be read: {exc.strerror}") from None
    else:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AuthConfigError(f"trusted issuers are not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    entries = data.get("issuers") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AuthConfigError(
            "trusted issuers: expected a list of {iss, jwks_url | jwks_file | jku_allowed, fhir_servers}"
        )
    issuers: dict[str, TrustedIssuer] = {}
    for entry in entries:
        issuer = _issuer(entry, folder)
        if issuer.iss in issuers:
            raise AuthConfigError(f"trusted issuer {issuer.iss!r} is listed twice")
        issuers[issuer.iss] = issuer
    return issuers


def _issuer(entry: Any, folder: Path) -> TrustedIssuer:
    """One entry of the issuers file, checked: a mistake stops the boot, naming the issuer."""
    if not isinstance(entry, dict) or not isinstance(entry.get("iss"), str) or not entry["iss"]:
        raise AuthConfigError(f"trusted issuer without iss: {entry!r}")
    iss = entry["iss"]
    if unknown := sorted(set(entry) - ISSUER_FIELDS):
        raise AuthConfigError(
            f"trusted issuer {iss!r}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(ISSUER_FIELDS))})"
        )
    jwks_url, jwks_file, jku_allowed = entry.get("jwks_url"), entry.get("jwks_file"), entry.get("jku_allowed", [])
    if not (jwks_url or jwks_file or jku_allowed):
        raise AuthConfigError(f"trusted issuer {iss!r} needs jwks_url, jwks_file or jku_allowed")
    if jwks_file is not None and not isinstance(jwks_file, str):
        raise AuthConfigError(f"trusted issuer {iss!r}: jwks_file must be a file name")
    return TrustedIssuer(
        iss=iss,
        jwks_url=_url(iss, "jwks_url", jwks_url) if jwks_url else None,
        keys=_jwks_file(iss, folder / jwks_file) if jwks_file else None,
        jku_allowed=tuple(_url(iss, "jku_allowed", u) for u in _strings(iss, "jku_allowed", jku_allowed)),
        fhir_servers=_fhir_servers(iss, entry.get("fhir_servers", [])),
    )


def _strings(iss: str, name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AuthConfigError(f"trusted issuer {iss!r}: {name} must be a list of strings")
    return value


def _url(iss: str, name: str, url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise AuthConfigError(f"trusted issuer {iss!r}: {name} {url!r} is not an http(s) URL")
    return url


def _fhir_servers(iss: str, entries: Any) -> AllowedFhirServers:
    """No `fhir_servers`: the issuer's calls may name no FHIR server (they must prefetch)."""
    try:
        checked = [check_entry(e) for e in _strings(iss, "fhir_servers", entries)]
    except ValueError as exc:
        raise AuthConfigError(f"trusted issuer {iss!r}: fhir_servers: {exc}") from None
    return AllowedFhirServers.of(checked, f"the fhir_servers of issuer {iss!r}")


def _jwks_file(iss: str, path: Path) -> PyJWKSet:
    """The public keys of a JWKS file, read once at start-up (a broken file stops the boot)."""
    where = f"trusted issuer {iss!r}: jwks_file {str(path)!r}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = PyJWKSet.from_dict(data)
    except OSError as exc:
        raise AuthConfigError(f"{where} cannot be read: {exc.strerror}") from None
    except (ValueError, AttributeError, jwt.PyJWTError) as exc:
        raise AuthConfigError(f"{where} is not a usable JWK Set: {exc}") from None
    if any("d" in k for k in data.get("keys", []) if isinstance(k, dict)):
        raise AuthConfigError(f"{where} holds a private key; give the service only the public keys")
    return keys


def verify(
    token: str, audiences: Sequence[str], policy: AuthPolicy, store: Store
) -> tuple[dict[str, Any], TrustedIssuer]:
    """The token's claims and its issuer if every check passes; Unauthorized(reason) otherwise."""
    header, unverified = _unverified(token)
    alg, kid, jku = _checked_header(header, policy.algorithms)
    iss = unverified.get("iss")
    issuer = policy.issuers.get(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise Unauthorized("untrusted-issuer")
    key = issuer.key(kid, jku, policy.jwks_timeout, policy.jwks_ttl)
    if not isinstance(key.key, KEY_TYPES[alg[:2]]):
        raise Unauthorized("key-does-not-fit-algorithm")
    claims = _decode(token, key, alg, audiences, issuer.iss, policy.clock_skew)
    _check_claims(claims, policy.max_lifetime)
    if policy.tenants and claims.get("tenant") not in policy.tenants:
        raise Unauthorized("tenant-not-allowed")
    if not store.remember_token(issuer.iss, claims["jti"], int(claims["exp"]) + policy.clock_skew):
        raise Unauthorized("replayed-jti")
    return claims, issuer


def _checked_header(header: dict[str, Any], algorithms: tuple[str, ...]) -> tuple[str, str, str | None]:
    """`alg`, `kid` and `jku` of a header whose values are of the right types (the JSON of an
    unverified header may hold anything)."""
    alg, kid, jku, typ = header.get("alg"), header.get("kid"), header.get("jku"), header.get("typ")
    if not isinstance(alg, str) or alg in NEVER_ALLOWED or alg not in algorithms:
        raise Unauthorized("algorithm-not-allowed")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("missing-kid")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ("jwt", "application/jwt")):
        raise Unauthorized("wrong-typ")  # RFC 7519 §5.1: "JWT", RFC 7515 §4.1.9: case-insensitive
    if jku is not None and not isinstance(jku, str):
        raise Unauthorized("jku-not-allowed")
    return alg, kid, jku


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One unverified read for what picks the key (alg, kid, iss); nothing else is trusted yet."""
    try:
        unread = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, RecursionError):
        raise Unauthorized("malformed-token") from None
    return unread["header"], unread["payload"]


def _check_claims(claims: dict[str, Any], max_lifetime: int) -> None:
    """What PyJWT leaves open: times must be JSON numbers (RFC 7519 §2 NumericDate; PyJWT also
    takes "123" and true), and the token must live minutes, as CDS clients sign them (the
    sandbox 300 s, Epic about 900 s), so that no stolen token lives long and the replay cache
    holds no jti for longer than AUTH_MAX_TOKEN_LIFETIME."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Unauthorized(f"invalid-{name}")
    lifetime = claims["exp"] - claims["iat"]
    if lifetime <= 0:
        raise Unauthorized("exp-before-iat")
    if lifetime > max_lifetime:
        raise Unauthorized("lifetime-too-long")
    if not isinstance(claims["jti"], str) or not claims["jti"].strip():
        raise Unauthorized("invalid-jti")


DECODE_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not-yet-valid"),
    (jwt.InvalidAudienceError, "wrong-audience"),
    (jwt.InvalidIssuedAtError, "invalid-iat"),
    (jwt.exceptions.InvalidJTIError, "invalid-jti"),
    (jwt.MissingRequiredClaimError, "missing-claim"),
    (jwt.InvalidSignatureError, "bad-signature"),
    (jwt.InvalidKeyError, "key-does-not-fit-algorithm"),
    (jwt.DecodeError, "invalid-claim-format"),  # e.g. exp or nbf not a number (after the signature)
]


def _decode(token: str, key: PyJWK, alg: str, audiences: Sequence[str], iss: str, skew: int) -> dict[str, Any]:
    try:
        # The raw key, not the PyJWK: a JWK without "alg" would otherwise be pinned to RS256 /
        # the curve's default, and the algorithm allow-list is ours to enforce.
        return jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=list(audiences),
            issuer=iss,
            leeway=skew,
            options={"require": REQUIRED_CLAIMS, "strict_aud": False},
        )
    except jwt.PyJWTError as exc:
        reason = next((r for kind, r in DECODE_REASONS if isinstance(exc, kind)), "invalid-token")
        raise Unauthorized(reason) from None
    except (TypeError, ValueError, OverflowError):
        # A key or claim PyJWT cannot handle: a check that fails, never a 500.
        raise Unauthorized("invalid-token") from None
