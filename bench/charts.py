"""The charts `make bench` sends: the typical and the large record, and a mix of many distinct
charts, so that a cache keyed by a resource's exact bytes measures real traffic, not itself.

The mix is built from the example patients' patient-view requests (fixtures/requests/, which
scripts/make_fixtures.py writes from fixtures/patients/): every request but the large record and
the one without prefetch, `COPIES` times, each copy renamed through and through (the patient,
every prefetched resource's id, the references and fullUrls that name them, context.patientId,
hookInstance). The clinical content is untouched, so a copy gets the cards of its original, yet no
prefetched resource is byte for byte the same as in any other body.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "fixtures" / "requests"
# The mix leaves out the large record (it would dominate the mix's cost) and the request the
# service must refuse (no prefetch, no fhirServer: 412).
LEFT_OUT = ("large-record", "no-prefetch")
COPIES = 6  # 38 patients x 6 = 228 distinct bodies


def request_body(name: str) -> dict[str, Any]:
    """One generated patient-view request, e.g. `typical-record`."""
    loaded: dict[str, Any] = json.loads((REQUESTS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def charts(copies: int = COPIES) -> dict[str, list[dict[str, Any]]]:
    """Chart name -> the request bodies wrk cycles through."""
    return {
        "typical": [request_body("typical-record")],
        "large": [request_body("large-record")],
        "mix": distinct_mix(copies),
    }


def distinct_mix(copies: int = COPIES) -> list[dict[str, Any]]:
    """`copies` renamed copies of each example patient's request, copy by copy."""
    names = sorted(p.stem for p in REQUESTS.glob("*.json") if p.stem not in LEFT_OUT)
    originals = [request_body(name) for name in names]
    return [renamed(original, f"bench{number:03d}") for number in range(copies) for original in originals]


def prefetched(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource of a request's prefetch: single resources and each searchset's entries."""
    for value in (request.get("prefetch") or {}).values():
        if not value:
            continue
        if value.get("resourceType") == "Bundle":
            yield from (entry["resource"] for entry in value.get("entry", []))
        else:
            yield value


def renamed(request: dict[str, Any], tag: str) -> dict[str, Any]:
    """A copy of `request` in which every prefetched resource and the patient are renamed with
    `tag`, and every reference to them follows."""
    body = copy.deepcopy(request)
    names: dict[str, str] = {}  # "Type/old id" -> "Type/new id"
    for resource in prefetched(body):
        new_id = f"{resource['id']}-{tag}"
        names[f"{resource['resourceType']}/{resource['id']}"] = f"{resource['resourceType']}/{new_id}"
        resource["id"] = new_id
    patient_id = body["context"]["patientId"]
    names.setdefault(f"Patient/{patient_id}", f"Patient/{patient_id}-{tag}")
    _follow(body, names)
    body["context"]["patientId"] = names[f"Patient/{patient_id}"].removeprefix("Patient/")
    body["hookInstance"] = str(uuid.uuid5(uuid.UUID(body["hookInstance"]), tag))
    return body


def _follow(node: Any, names: dict[str, str]) -> None:
    """Rewrite, in place, each `reference` and `fullUrl` that names a renamed resource."""
    if isinstance(node, list):
        for item in node:
            _follow(item, names)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("reference", "fullUrl") and isinstance(value, str):
                node[key] = _renamed_reference(value, names)
            else:
                _follow(value, names)


def _renamed_reference(value: str, names: dict[str, str]) -> str:
    """`Type/id`, or an absolute URL ending in it, with the resource's new name."""
    for old, new in names.items():
        if value == old or value.endswith("/" + old):
            return value[: len(value) - len(old)] + new
    return value


def ndjson(bodies: list[dict[str, Any]]) -> bytes:
    """The bodies one per line, as wrk's script reads them (compact JSON has no raw newline)."""
    return b"".join(json.dumps(body, separators=(",", ":")).encode() + b"\n" for body in bodies)
