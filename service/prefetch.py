"""Prefetch, then fetch (CDS Hooks 2.0.1 §Prefetch).

Use what the EHR sent; fetch every key it could not fill from `fhirServer`, with the bearer
token of `fhirAuthorization`. What the EHR may send for a key:
  - nothing (the key is absent): fetch it;
  - `null`: for a read, the resource does not exist; for a search, fetch it;
  - an OperationOutcome: the EHR failed to fill it; fetch it;
  - a Bundle: use its entries; a `next` link means more pages, fetched from fhirServer;
  - a resource: use it.
When a key cannot be obtained — no fhirServer, server down, slow, refusing — the answer is 412,
naming each key, its query and the reason. This is the one place fetch failures become 412.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from cards.resources import RawResource
from service import metrics
from service.errors import BadRequest, PrefetchUnavailable
from service.fhir_client import FetchError, FetchPolicy, FhirClient, bundle_resources, next_link

TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")


@dataclass
class Gathered:
    """The raw resources for one call, and which prefetch keys had to be fetched."""

    resources: list[RawResource] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


def render_query(template: str, context: Mapping[str, Any]) -> str:
    """Fill `{{context.x}}` tokens (CDS Hooks §Prefetch tokens); ids were validated already."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("context."):
            return str(context.get(name.removeprefix("context."), ""))
        if name == "userPractitionerId" and str(context.get("userId", "")).startswith("Practitioner/"):
            return str(context["userId"]).split("/", 1)[1]
        return ""

    return TOKEN.sub(value, template)


def is_read(query: str) -> bool:
    """`Patient/123` is a read; `Condition?patient=123` is a search."""
    return "?" not in query and query.count("/") == 1


def gather(
    templates: Mapping[str, str],
    request: Mapping[str, Any],
    session: requests.Session,
    policy: FetchPolicy,
) -> Gathered:
    """Every resource the service's prefetch templates ask for, from prefetch or fetched."""
    queries = {key: render_query(t, request["context"]) for key, t in templates.items()}
    prefetch = request.get("prefetch") or {}
    gathered = Gathered()
    to_fetch: dict[str, str] = {}
    continuations: dict[str, str] = {}
    for key, query in queries.items():
        if key not in prefetch:
            to_fetch[key] = query
            continue
        value = prefetch[key]
        if value is None:
            if not is_read(query):
                to_fetch[key] = query
            continue
        if not isinstance(value, dict):
            raise BadRequest(f"prefetch.{key} must be a FHIR resource or null",
                             errors={f"prefetch.{key}": ["Not a JSON object."]})
        kind = _checked_kind(key, query, value)
        if kind == "OperationOutcome":
            to_fetch[key] = query
        elif kind == "Bundle":
            gathered.resources += _bundle(key, value)
            if (more := next_link(value)) is not None:
                continuations[key] = more
        else:
            gathered.resources.append(RawResource(value, f"prefetch.{key}"))
    if to_fetch or continuations:
        _fetch(request, to_fetch, continuations, session, policy, gathered)
    return gathered


def _checked_kind(key: str, query: str, value: dict[str, Any]) -> str:
    """The resourceType of a prefetched value, which must be what the template asks for: a
    Bundle for a search, the resource for a read (or an OperationOutcome). Anything else is a
    malformed request, never "no data" (that would be false reassurance)."""
    kind = value.get("resourceType")
    expected = query.split("/", 1)[0] if is_read(query) else "Bundle"
    if kind not in (expected, "OperationOutcome"):
        got = f"{str(kind)[:40]!r}" if isinstance(kind, str) else "no resourceType"
        raise BadRequest(f"prefetch.{key} must be a {expected} (the template is {query.split('?')[0]!r}), "
                         f"not {got}.", errors={f"prefetch.{key}": [f"Expected a {expected}."]})
    return str(kind)


def _bundle(key: str, bundle: dict[str, Any]) -> list[RawResource]:
    try:
        return [RawResource(r, f"prefetch.{key}") for r in bundle_resources(bundle, f"prefetch.{key}")]
    except FetchError as exc:
        raise BadRequest(f"prefetch.{key} is not a usable Bundle: {exc.reason}",
                         errors={f"prefetch.{key}": [exc.reason]}) from None


def _fetch(
    request: Mapping[str, Any],
    to_fetch: dict[str, str],
    continuations: dict[str, str],
    session: requests.Session,
    policy: FetchPolicy,
    gathered: Gathered,
) -> None:
    server = request.get("fhirServer")
    keys = sorted(to_fetch.keys() | continuations.keys())
    if not server:
        raise PrefetchUnavailable(
            "The request has no fhirServer, and prefetch is missing data the service needs.",
            missing=[{"key": k, "query": to_fetch.get(k, continuations.get(k)),
                      "reason": "not prefetched and no fhirServer to fetch it from" if k in to_fetch
                      else "prefetched only in part (a next link) and no fhirServer to fetch the rest"}
                     for k in keys],
        )
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    client = FhirClient(session, server, token, policy)
    jobs = {k: (client.read if is_read(q) else client.search, q) for k, q in to_fetch.items()}
    jobs |= {k: (client.search, url) for k, url in continuations.items()}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {k: pool.submit(fn, q) for k, (fn, q) in jobs.items()}
    failures = []
    for key in keys:
        try:
            result = futures[key].result()
        except FetchError as exc:
            failures.append({"key": key, "query": exc.url, "reason": exc.reason})
            metrics.FETCHES.labels(key, "failed").inc()
            continue
        metrics.FETCHES.labels(key, "ok").inc()
        items = [result] if isinstance(result, dict) else (result or [])
        gathered.resources += [RawResource(r, f"fetched {key}") for r in items]
        gathered.fetched.append(key)
    if failures:
        raise PrefetchUnavailable(
            "Data the service needs could not be obtained from the FHIR server.", missing=failures
        )
