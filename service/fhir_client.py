"""The fallback FHIR client: reads and searches on the EHR's `fhirServer` with `requests`.

Transport apart from policy: the `requests.Session` is injected (tests and the app share one
pool); every `requests` error becomes a `FetchError` naming the URL and the reason, which the
prefetch step turns into 412. The access token is sent, never logged or stored, and only to a
FHIR server the caller may name (service/fhir_servers.py): every GET passes that check first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import orjson
import requests

from service.fhir_servers import AllowedFhirServers

FHIR_JSON = "application/fhir+json"


class FetchError(Exception):
    """A read or search on the FHIR server failed; `url` is what was asked."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class FetchPolicy:
    """Timeouts and caps of the fallback fetch (from Settings), and the FHIR servers this
    call may be fetched from (its caller's)."""

    connect_timeout: float
    read_timeout: float
    budget: float
    max_pages: int
    max_entries: int
    servers: AllowedFhirServers


class FhirClient:
    """One CDS call's view of the FHIR server: base URL, bearer token, shared deadline."""

    def __init__(self, session: requests.Session, base_url: str, token: str | None, policy: FetchPolicy) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token
        self.policy = policy
        self.deadline = time.monotonic() + policy.budget
        # Decided once per client, enforced on every GET (reads, searches, paging, later reads).
        self.refusal = policy.servers.refusal(base_url, with_token=bool(token))

    def url(self, query: str) -> str:
        """Absolute URL of a relative query such as `Condition?patient=1`."""
        return urljoin(self.base_url, query.lstrip("/"))

    def read(self, query: str) -> dict[str, Any] | None:
        """GET one resource; None when the server says it does not exist (404 or 410)."""
        url = self.url(query)
        body = self._get(url, missing_ok=True)
        if body is None:
            return None
        expected = query.split("/", 1)[0]
        if body.get("resourceType") != expected:
            raise FetchError(url, f"expected a {expected}, got {body.get('resourceType')!r}")
        return body

    def search(self, query: str) -> list[dict[str, Any]]:
        """GET a searchset and follow `next` links; the matched resources of every page."""
        url: str | None = self.url(query)
        seen: set[str] = set()
        entries: list[dict[str, Any]] = []
        while url is not None:
            if url in seen:
                raise FetchError(url, "the server's paging links loop back to a page already read")
            if len(seen) >= self.policy.max_pages:
                raise FetchError(url, f"more than {self.policy.max_pages} pages of results")
            if not url.startswith(self.base_url):
                # The bearer token goes only to the EHR's own FHIR server.
                raise FetchError(url, "a paging link points outside the FHIR server")
            seen.add(url)
            bundle = self._get(url)
            assert bundle is not None
            entries += bundle_resources(bundle, url)
            if len(entries) > self.policy.max_entries:
                raise FetchError(url, f"more than {self.policy.max_entries} resources")
            url = next_link(bundle)
        return entries

    def _get(self, url: str, missing_ok: bool = False) -> dict[str, Any] | None:
        if self.refusal is not None:
            raise FetchError(url, self.refusal)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(url, f"time budget of {self.policy.budget}s used up")
        headers = {"Accept": FHIR_JSON}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = (min(self.policy.connect_timeout, remaining), min(self.policy.read_timeout, remaining))
        try:
            response = self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            raise FetchError(url, f"no answer within {timeout[1]:.2f}s") from None
        except requests.ConnectionError:
            raise FetchError(url, "the FHIR server could not be reached") from None
        except requests.RequestException as exc:
            raise FetchError(url, f"request failed ({type(exc).__name__})") from None
        return self._body(url, response, missing_ok)

    def _body(self, url: str, response: requests.Response, missing_ok: bool) -> dict[str, Any] | None:
        if missing_ok and response.status_code in (404, 410):
            return None
        if response.status_code in (401, 403):
            raise FetchError(url, f"the FHIR server refused access (HTTP {response.status_code})")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise FetchError(url, f"HTTP {response.status_code}, and the body is not JSON") from None
        if not isinstance(body, dict):
            raise FetchError(url, "the body is not a JSON object")
        if body.get("resourceType") == "OperationOutcome" or not response.ok:
            raise FetchError(url, f"HTTP {response.status_code}: {outcome_text(body)}")
        return body


def outcome_text(body: dict[str, Any]) -> str:
    """A short human text of an OperationOutcome (or of any error body)."""
    if body.get("resourceType") != "OperationOutcome":
        return "unexpected answer"
    issues = _list(body.get("issue"))
    texts = [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code") or "")
        for i in issues
        if isinstance(i, dict)
    ]
    return "OperationOutcome: " + ("; ".join(t for t in texts if t) or "no details")


def bundle_resources(bundle: dict[str, Any], origin: str) -> list[dict[str, Any]]:
    """The matched resources of a searchset Bundle; an error OperationOutcome entry fails."""
    if bundle.get("resourceType") != "Bundle":
        raise FetchError(origin, f"expected a Bundle, got {bundle.get('resourceType')!r}")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FetchError(origin, "Bundle.entry is not a list")
    resources = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise FetchError(origin, "a Bundle entry has no resource object")
        if resource.get("resourceType") == "OperationOutcome":  # (a non-string type is judged later)
            if _is_error(resource):
                raise FetchError(origin, outcome_text(resource))
            continue  # e.g. a warning that a search parameter was ignored
        resources.append(resource)
    return resources


def _is_error(outcome: dict[str, Any]) -> bool:
    issues = _list(outcome.get("issue"))
    return any(isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in issues)


def next_link(bundle: dict[str, Any]) -> str | None:
    """The Bundle's `next` link, if any."""
    for link in _list(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _list(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else none (a server's malformed field is no list)."""
    return value if isinstance(value, list) else []
