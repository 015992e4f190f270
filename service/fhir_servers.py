"""Which FHIR servers the service may fetch from, and send the EHR's access token to.

CDS Hooks 2.0.1 §Prefetch has the service fetch what the EHR did not prefetch from the request's
`fhirServer`, with the bearer token of `fhirAuthorization`. Taken on trust, that URL would make
the service fetch from any address it can reach (server-side request forgery, internal hosts
included) and send the token wherever a request says. So the FHIR base URLs each caller may
name are configured: an issuer's `fhir_servers` (AUTH_MODE=required) or FHIR_SERVERS_ALLOWED
(AUTH_MODE=off). A `fhirServer` not among them is never fetched from: every fetch of the call
fails with the reason, and the prefetch step answers 412.

An entry is a FHIR base URL, compared exactly on scheme, host, port and path (trailing `/`,
letter case of scheme and host and default ports aside), or the word `loopback`: http or https
on 127.0.0.1, localhost or [::1], any port and path (development). The scheme is part of the
match, so a token goes over plain http only to a server listed with `http://`, or to loopback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = "loopback"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def base_url_key(url: str) -> str | None:
    """The comparable form of a FHIR base URL (`https://host:443/path`), or None when `url`
    cannot be one: not http(s), no host, a bad port, or credentials, a query or a fragment."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc or parts.query or parts.fragment:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port or DEFAULT_PORTS[scheme]}{parts.path.rstrip('/')}"


def is_loopback(url: str) -> bool:
    """http(s) on this machine's loopback names, any port."""
    key = base_url_key(url)
    return key is not None and urlsplit(key).hostname in LOOPBACK_HOSTS


def check_entry(entry: str) -> str:
    """`entry` if it can be an allow-list entry; ValueError saying what one looks like."""
    if entry == LOOPBACK or base_url_key(entry) is not None:
        return entry
    raise ValueError(f"{entry!r} is not a FHIR base URL (http(s)://host[:port]/path, no query) nor {LOOPBACK!r}")


@dataclass(frozen=True)
class AllowedFhirServers:
    """The FHIR servers one kind of caller may send the service to; `source` names the
    setting, for the reason a refused fetch gives."""

    keys: frozenset[str]
    loopback: bool
    source: str

    @classmethod
    def of(cls, entries: Iterable[str], source: str) -> AllowedFhirServers:
        """From entries already checked by `check_entry`."""
        entries = list(entries)
        keys = frozenset(k for e in entries if e != LOOPBACK and (k := base_url_key(e)) is not None)
        return cls(keys, LOOPBACK in entries, source)

    def refusal(self, fhir_server: str, with_token: bool) -> str | None:
        """Why the service must not fetch from `fhir_server`; None when it may."""
        key = base_url_key(fhir_server)
        if key is None:
            return "fhirServer is not a plain http(s) base URL (credentials, query or fragment); nothing was fetched"
        if key in self.keys or (self.loopback and is_loopback(fhir_server)):
            return None
        if with_token and key.startswith("http://") and "https://" + key.removeprefix("http://") in self.keys:
            return (
                f"fhirServer uses http:// where {self.source} allows only https://: the access token "
                "is never sent in clear text; nothing was fetched"
            )
        return f"fhirServer is not among the FHIR servers allowed by {self.source}; nothing was fetched from it"
