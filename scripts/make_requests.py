#!/usr/bin/env python3
"""Generate fixtures/requests/<name>.json: a CDS Hooks 2.0 patient-view request per patient.

For every collection Bundle in fixtures/patients/, the request carries:
  - hook "patient-view" and a fixed hookInstance (uuid5 of the fixture name), so that the output
    is byte-for-byte reproducible;
  - context {userId: "Practitioner/example", patientId: the Bundle's Patient id};
  - prefetch filled for every key of the service's templates (service.registry
    PATIENT_VIEW_PREFETCH): a read key ("Patient/{{context.patientId}}") gets the resource itself,
    a search key ("Condition?patient=...") a searchset Bundle of the Bundle's resources of that
    type. Search parameters other than the resource type are not applied: the observations key
    gets every Observation, as an EHR that ignores the code filter would send;
  - Medication resources of the patient Bundle go with the first search whose resources name
    them by `medicationReference`, as `search.mode: include` entries (what a US Core server
    answers to `MedicationRequest?patient=...&_include=MedicationRequest:medication`);
  - no fhirServer: everything the service needs is in the request.

It also writes fixtures/requests/no-prefetch.json: the icepick-moderate request with neither
prefetch nor fhirServer, which the service must answer with 412 (see the README).

Usage:  python scripts/make_requests.py [--check]      (also: make fixtures)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service.registry import PATIENT_VIEW_PREFETCH

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = ROOT / "fixtures" / "patients"
REQUESTS = ROOT / "fixtures" / "requests"
HOOK = "patient-view"
USER = "Practitioner/example"
# The namespace of the fixed hookInstance uuids: uuid5(NAMESPACE, fixture name).
NAMESPACE = uuid.NAMESPACE_URL
NO_PREFETCH = ("no-prefetch", "icepick-moderate")
TEMPLATE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)(?P<kind>/|\?)")


def template_types(templates: Mapping[str, str]) -> dict[str, tuple[str, bool]]:
    """Prefetch key -> (FHIR resource type, is a search) from each template's leading type."""
    out = {}
    for key, template in templates.items():
        match = TEMPLATE.match(template)
        if match is None:
            raise ValueError(f"prefetch {key!r}: cannot tell the resource type of {template!r}")
        out[key] = (match["type"], match["kind"] == "?")
    return out


def hook_instance(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def searchset(entries: list[Mapping[str, Any]], included: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A searchset Bundle of the patient Bundle's `entries`, then the `included` ones (no `entry`
    key when there are none: FHIR JSON forbids empty arrays). `total` counts the matches only."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    found = [(e, "match") for e in entries] + [(e, "include") for e in included]
    if found:
        bundle["entry"] = [
            {**({"fullUrl": e["fullUrl"]} if "fullUrl" in e else {}),
             "resource": e["resource"], "search": {"mode": mode}}
            for e, mode in found
        ]
    return bundle


def _included(matching: list[Mapping[str, Any]], medications: dict[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Medications these resources name, taken out of `medications` (each goes once)."""
    names = [(e["resource"].get("medicationReference") or {}).get("reference") for e in matching]
    return [medications.pop(n) for n in dict.fromkeys(names) if n in medications]


def patient_request(name: str, bundle: Mapping[str, Any],
                    templates: Mapping[str, str] = PATIENT_VIEW_PREFETCH) -> dict[str, Any]:
    """The patient-view request for one patient Bundle, prefetch filled from its resources."""
    entries = list(bundle.get("entry", []))
    patients = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"{name}: a patient Bundle needs exactly one Patient, has {len(patients)}")
    prefetch: dict[str, Any] = {}
    medications = {f"Medication/{e['resource']['id']}": e for e in entries
                   if e["resource"]["resourceType"] == "Medication"}
    for key, (kind, is_search) in template_types(templates).items():
        matching = [e for e in entries if e["resource"]["resourceType"] == kind]
        if is_search:
            prefetch[key] = searchset(matching, _included(matching, medications))
        else:
            prefetch[key] = matching[0]["resource"] if matching else None
    return {
        "hook": HOOK,
        "hookInstance": hook_instance(name),
        "context": {"userId": USER, "patientId": patients[0]["id"]},
        "prefetch": prefetch,
    }


def no_prefetch_request(name: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """`source` without prefetch (and without fhirServer): the service cannot get its data."""
    return {"hook": source["hook"], "hookInstance": hook_instance(name),
            "context": dict(source["context"])}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build_all(patients_dir: Path = PATIENTS) -> dict[str, str]:
    """File name -> file text of every request this script writes."""
    out: dict[str, str] = {}
    requests: dict[str, dict[str, Any]] = {}
    for path in sorted(patients_dir.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        requests[path.stem] = patient_request(path.stem, bundle)
        out[f"{path.stem}.json"] = dumps(requests[path.stem])
    name, source = NO_PREFETCH
    out[f"{name}.json"] = dumps(no_prefetch_request(name, requests[source]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if fixtures/requests differs from what this script writes")
    args = parser.parse_args(argv)
    wanted = build_all()
    if args.check:
        changed = [n for n, text in wanted.items()
                   if not (REQUESTS / n).exists()
                   or (REQUESTS / n).read_text(encoding="utf-8") != text]
        for name in changed:
            print(f"fixtures/requests/{name} is out of date: run make fixtures")
        return 1 if changed else 0
    REQUESTS.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (REQUESTS / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} requests to {REQUESTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
