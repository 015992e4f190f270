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

Medications by reference (GUIDELINE §2, v2): a statement, request, dispense or draft order may
name its medication by a `medicationReference` to a Medication that is neither contained nor
among the resources received (US Core servers do this). Those Medications are read from
fhirServer in the same parallel round as the missing keys (a second round for references that
only the fetched resources make), within the same time budget. One that cannot be read is not a
412: the data the service needs was obtained, and the cards say which medication could not be
identified (GUIDELINE §1: unreadable is not absent, an error is not an answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from cards.resources import RawResource, medication_key, unresolved_medications
from service import metrics
from service.errors import BadRequest, PrefetchUnavailable
from service.fhir_client import FetchError, FetchPolicy, FhirClient, bundle_resources, next_link
from service.hook_request import HookRequest

TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
Job = tuple[Callable[[str], Any], str]


@dataclass
class Gathered:
    """The raw resources for one call, and which prefetch keys had to be fetched."""

    resources: list[RawResource] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


def render_query(template: str, context: Mapping[str, str]) -> str:
    """Fill `{{context.x}}` tokens (CDS Hooks §Prefetch tokens) from the context's fields by their
    CDS Hooks names; ids were validated already."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("context."):
            return context.get(name.removeprefix("context."), "")
        if name == "userPractitionerId" and context.get("userId", "").startswith("Practitioner/"):
            return context["userId"].split("/", 1)[1]
        return ""

    return TOKEN.sub(value, template)


def is_read(query: str) -> bool:
    """`Patient/123` is a read; `Condition?patient=123` is a search."""
    return "?" not in query and query.count("/") == 1


def gather(
    templates: Mapping[str, str],
    request: HookRequest[Any],
    session: requests.Session,
    policy: FetchPolicy,
    related: Sequence[RawResource] = (),
) -> Gathered:
    """Every resource the service's prefetch templates ask for, from prefetch or fetched, and
    the Medications that they (or the `related` resources, such as draft orders) point at."""
    tokens = request.context.tokens()
    queries = {key: render_query(t, tokens) for key, t in templates.items()}
    gathered, to_fetch, continuations = _prefetched(queries, request.prefetch)
    if not (to_fetch or continuations or unresolved_medications([*gathered.resources, *related])):
        return gathered
    client = _client(request, policy, session)
    if client is None and (to_fetch or continuations):
        raise PrefetchUnavailable(
            "The request has no fhirServer, and prefetch is missing data the service needs.",
            missing=[
                {
                    "key": k,
                    "query": to_fetch.get(k, continuations.get(k)),
                    "reason": "not prefetched and no fhirServer to fetch it from"
                    if k in to_fetch
                    else "prefetched only in part (a next link) and no fhirServer to fetch the rest",
                }
                for k in sorted(to_fetch.keys() | continuations.keys())
            ],
        )
    if client is None:
        return gathered  # Medications that cannot be read: the cards say so
    jobs: dict[str, Job] = {k: (client.read if is_read(q) else client.search, q) for k, q in to_fetch.items()}
    jobs |= {k: (client.search, url) for k, url in continuations.items()}
    _collect(_run(jobs | _medication_jobs(client, [*gathered.resources, *related]), policy), gathered)
    if more := _medication_jobs(client, [*gathered.resources, *related]):
        _collect(_run(more, policy), gathered)  # Medications only the fetched resources name
    return gathered


def _prefetched(
    queries: Mapping[str, str], prefetch: Mapping[str, Any]
) -> tuple[Gathered, dict[str, str], dict[str, str]]:
    """What the EHR prefetched; the keys to fetch; the `next` links of partly prefetched searches."""
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
        if not is_read(query) and (isinstance(value, list) or _searched_type(query) == _kind(value)):
            value = _as_bundle([value] if isinstance(value, dict) else value)
        if not isinstance(value, dict):
            raise BadRequest(
                f"prefetch.{key} must be a FHIR resource or null", errors={f"prefetch.{key}": ["Not a JSON object."]}
            )
        kind = _checked_kind(key, query, value)
        if kind == "OperationOutcome":
            to_fetch[key] = query
        elif kind == "Bundle":
            gathered.resources += _bundle(key, value)
            if (more := next_link(value)) is not None:
                continuations[key] = more
        else:
            gathered.resources.append(RawResource(value, f"prefetch.{key}"))
    return gathered, to_fetch, continuations


def _searched_type(query: str) -> str:
    return query.split("?", 1)[0]


def _kind(value: Any) -> Any:
    return value.get("resourceType") if isinstance(value, dict) else None


def _as_bundle(resources: list[Any]) -> dict[str, Any]:
    """A search answered with a JSON array of resources, or with the one resource found, rather
    than a Bundle: the meaning is unambiguous (GUIDELINE §1, v2: liberal in the shapes
    accepted), so it is read as a Bundle of them."""
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _client(request: HookRequest[Any], policy: FetchPolicy, session: requests.Session) -> FhirClient | None:
    """The one FHIR client of this call, or None without a fhirServer."""
    if not request.fhir_server:
        return None
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    return FhirClient(session, request.fhir_server, token, policy)


def _medication_jobs(client: FhirClient, resources: Sequence[RawResource]) -> dict[str, Job]:
    """Reads of the Medications that medication uses name and that were not received: only
    relative references, or absolute ones on fhirServer itself (the token goes nowhere else)."""
    jobs: dict[str, Job] = {}
    for reference in unresolved_medications(resources):
        key = medication_key(reference)
        if key and (not reference.startswith(("http://", "https://")) or reference.startswith(client.base_url)):
            jobs[key] = (client.read, key)
    return jobs


def _run(jobs: Mapping[str, Job], policy: FetchPolicy) -> dict[str, Any]:
    """Every job at once (threads; the client shares one deadline): key -> result or FetchError."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {k: pool.submit(fn, q) for k, (fn, q) in jobs.items()}
    results: dict[str, Any] = {}
    for key, future in futures.items():
        try:
            results[key] = future.result()
        except FetchError as exc:
            results[key] = exc
    return results


def _collect(results: Mapping[str, Any], gathered: Gathered) -> None:
    """Add what was fetched; a missing key is a 412 naming every key that failed, a Medication
    that could not be read is left for the cards to name."""
    failures = []
    for key in sorted(results):
        result = results[key]
        medication = key.startswith("Medication/")
        label = "medication" if medication else key  # Medication ids are not metric labels
        if isinstance(result, FetchError):
            metrics.FETCHES.labels(label, "failed").inc()
            if not medication:
                failures.append({"key": key, "query": result.url, "reason": result.reason})
            continue
        metrics.FETCHES.labels(label, "ok").inc()
        items = [result] if isinstance(result, dict) else (result or [])
        gathered.resources += [RawResource(r, f"fetched {key}") for r in items]
        if not medication:
            gathered.fetched.append(key)
    if failures:
        raise PrefetchUnavailable(
            "Data the service needs could not be obtained from the FHIR server.", missing=failures
        )


def _checked_kind(key: str, query: str, value: dict[str, Any]) -> str:
    """The resourceType of a prefetched value, which must be what the template asks for: a
    Bundle for a search, the resource for a read (or an OperationOutcome). Anything else is a
    malformed request, never "no data" (that would be false reassurance)."""
    kind = value.get("resourceType")
    expected = query.split("/", 1)[0] if is_read(query) else "Bundle"
    if kind not in (expected, "OperationOutcome"):
        got = f"{str(kind)[:40]!r}" if isinstance(kind, str) else "no resourceType"
        raise BadRequest(
            f"prefetch.{key} must be a {expected} (the template is {query.split('?')[0]!r}), not {got}.",
            errors={f"prefetch.{key}": [f"Expected a {expected}."]},
        )
    return str(kind)


def _bundle(key: str, bundle: dict[str, Any]) -> list[RawResource]:
    try:
        return [RawResource(r, f"prefetch.{key}") for r in bundle_resources(bundle, f"prefetch.{key}")]
    except FetchError as exc:
        raise BadRequest(
            f"prefetch.{key} is not a usable Bundle: {exc.reason}", errors={f"prefetch.{key}": [exc.reason]}
        ) from None
