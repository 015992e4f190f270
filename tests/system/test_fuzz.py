"""Contract fuzzing: schemathesis drives every operation of service/openapi.yaml against the real
service under gunicorn (2 workers, SQLite, AUTH_MODE=off), over HTTP on loopback.

Each operation gets the contract's examples, schemathesis's coverage cases (boundary values,
missing and mistyped fields, undocumented methods) and fuzzed requests, valid ("positive") and
invalid ("negative"). Every response goes through schemathesis's checks: no 5xx, the status code
documented, content type and body as the contract says, required headers present, valid requests
accepted, invalid ones rejected, 405 with `Allow` for an undocumented method. Derandomized: the
same cases every run. The service's log must hold no traceback at the end.

What the test changes in a generated request, and why:
  - `fhirServer` (an http(s) URL) is pointed at a stub FHIR server on 127.0.0.1 (its path is
    kept), so the fallback fetch runs for real and never leaves the machine; the service also
    gets a proxy on a closed loopback port, so a URL the rewrite missed fails on loopback too;
  - a valid hook call goes to the service of its `hook` (the contract requires it in prose; a
    schema cannot tie the body to the path), and a valid order-select call's `selections` name
    its drafts;
  - prefetch values generated under random key names, which the service ignores, are moved to
    the keys the called service reads (every key has the same schema), so they are parsed;
  - feedback names cards and suggestions the service really issued (seeded at start), so the
    store path (200, duplicates, rejected items) is fuzzed and not only `422 unknown-card`;
  - the defects the fuzzing found (a non-latin-1 bearer token, a feedback time outside the
    calendar in UTC) are fixed; their regression tests are at the end of this file.

Checks that cannot hold here, by design:
  - `ignored_auth`, `missing_required_header`: the service runs with AUTH_MODE=off, where the
    contract says no token is checked and no 401 is given (JWTs are tested in test_auth.py);
    for the same reason no `Authorization` header is generated.
  - `positive_data_acceptance` on `callService` also accepts 412 and 422, and on `sendFeedback`
    422: a schema cannot say that prefetch must be complete (412 prefetch-unavailable), that a
    FHIR resource must be valid R4 and about the patient (422 invalid-fhir-resource), or that a
    card uuid must be one this service issued (422 unknown-card); the contract documents each.
  - `negative_data_rejection` also accepts 413: a body over MAX_BODY_BYTES is refused before
    it is read, as the contract documents.
  - Where the contract's schema contradicts its prose, or says less than the service enforces,
    the failure is dropped (`CONTRACT GAPS` below; each is reported as a contract mistake).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
import schemathesis
import yaml
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure

from tests.support.paths import ROOT
from tests.support.servers import Gunicorn, gunicorn, serving_in_a_thread

CONTRACT = ROOT / "service" / "openapi.yaml"
RAW = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
# Fuzzed cases per operation, on top of the examples and coverage cases: about 2 minutes for the
# file on 2 cores. For a deeper run by hand: FUZZ_MAX_EXAMPLES=5000, and FUZZ_RANDOM=1 for other
# cases than CI's (derandomized: the same cases every run).
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "1000"))
HOOK_SERVICE = {
    "patient-view": "acne-scar-treatment",
    "order-select": "acne-scar-order-select",
    "order-sign": "acne-scar-order-sign",
}
UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
SCHEME_AND_HOST = re.compile(r"^\s*https?:(//[^/?#]*)?", re.IGNORECASE)
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on it


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "with-security-parameters": False, "database": "none"},
            "phases": {"stateful": {"enabled": False}},  # the contract has no links: nothing to chain
            # Fuzzed tokens are random: show them, so that a failure's curl command reproduces it.
            "output": {"sanitization": {"enabled": False}},
            "checks": {
                "ignored_auth": {"enabled": False},
                "missing_required_header": {"enabled": False},
                "negative_data_rejection": {
                    "expected-statuses": ["400", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
                },
            },
            "operations": [
                {
                    "include-operation-id": "callService",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "412", "422"]}},
                },
                {
                    "include-operation-id": "sendFeedback",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "422"]}},
                },
            ],
        }
    )


schema = schemathesis.openapi.from_path(CONTRACT, config=_config())


def _validator(schema_: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for a schema of the contract, its `$ref`s resolved in the contract."""
    return jsonschema.Draft202012Validator(
        {**RAW, **schema_}, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


HOOK_REQUEST = _validator({"$ref": "#/components/schemas/HookRequest"})
SERVICE_PREFETCH_KEYS: dict[str, set[str]] = {}  # from discovery, once the service is up


def _operation_id(case: schemathesis.Case) -> str | None:
    return case.operation.definition.raw.get("operationId")


# ----- CONTRACT GAPS: the schema says one thing, the service (and mostly the prose) another ------
# Failures these explain exactly are dropped; each is reported to the lead as a contract mistake.


def _only_foreign_prefetch_keys_invalid(
    failure: Failure, case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    """HookRequest.prefetch gives every key the `FhirResource | null` schema, but the contract
    says "Keys that are not the service's are ignored", and the service ignores them. ST201 on a
    body that is valid once the keys the called service does not use are dropped is that gap."""
    if failure.code != "ST201" or _operation_id(case) != "callService":
        return False
    body: Any = case.body  # generated JSON: judged by isinstance below
    keys = SERVICE_PREFETCH_KEYS.get((case.path_parameters or {}).get("id", ""))
    if keys is None or not isinstance(body, dict) or not isinstance(body.get("prefetch"), dict):
        return False
    return HOOK_REQUEST.is_valid({**body, "prefetch": {k: v for k, v in body["prefetch"].items() if k in keys}})


def _yaml_body_described_as_a_string(
    failure: Failure, case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    """GET /openapi.yaml: `application/yaml` with `schema: {type: string}`. A YAML body is read
    as the data it encodes, here a mapping (the OpenAPI document), not a string."""
    return failure.code == "ST108" and _operation_id(case) == "openapi"


def _refusal_errors(failure: Failure, response: schemathesis.Response) -> Any:
    """The field errors of a 400 that schemathesis reports as valid data refused (ST202)."""
    if failure.code != "ST202" or response.status_code != 400:
        return None
    try:
        return json.loads(response.content).get("errors")
    except (ValueError, AttributeError):
        return None


def _selection_not_among_drafts(failure: Failure, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """order-select: the service refuses (400) a selection that names no entry of
    `draftOrders`; the contract's error steps for callService do not list it, and no schema can
    say it. (Valid order-select calls get selections that name their drafts in `_prepare`; this
    is the rest: drafts whose reference cannot be a selection, or no drafts at all.)"""
    errors = _refusal_errors(failure, response)
    if not isinstance(errors, dict) or errors.keys() != {"context"} or not isinstance(errors["context"], dict):
        return False
    selections = errors["context"].get("selections")
    return (
        errors["context"].keys() == {"selections"}
        and isinstance(selections, list)
        and all(str(m).endswith("is not among context.draftOrders.") for m in selections)
    )


def _prefetch_value_the_key_cannot_hold(
    failure: Failure, case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    """Every prefetch key has the schema `FhirResource | null`, but the service refuses (400,
    errors under `prefetch.<key>`) a value its template cannot return: a search key (`conditions`)
    holding anything but a Bundle, an OperationOutcome or null, a read key (`patient`) another
    resource type, a Bundle it cannot read. Step 4 of callService names only the last; the
    schema could say it key by key."""
    errors = _refusal_errors(failure, response)
    return isinstance(errors, dict) and bool(errors) and all(str(k).startswith("prefetch.") for k in errors)


ORJSON_INTS = range(-(2**63), 2**64)  # orjson reads a JSON integer outside this range as a float


def _expires_in_beyond_64_bits(failure: Failure, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """FhirAuthorization.expires_in is an unbounded `integer`, but the service reads JSON
    integers beyond 64 bits as floats (orjson) and refuses them: 400 "Not a valid integer"."""
    body = case.body if isinstance(case.body, dict) else {}
    authorization = body.get("fhirAuthorization")
    expires_in = authorization.get("expires_in") if isinstance(authorization, dict) else None
    return (
        failure.code == "ST202"
        and response.status_code == 400
        and isinstance(expires_in, int)
        and expires_in not in ORJSON_INTS
    )


def _timestamp_outside_utc_calendar(failure: Failure, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """A feedback time that leaves years 1-9999 once in UTC is refused (400); a JSON Schema
    pattern cannot say so (see the regression test below)."""
    body: Any = case.body
    items = body.get("feedback") if isinstance(body, dict) else None
    return (
        response.status_code == 400
        and isinstance(items, list)
        and any(
            isinstance(i, dict)
            and isinstance(i.get("outcomeTimestamp"), str)
            and _beyond_the_calendar_in_utc(i["outcomeTimestamp"])
            for i in items
        )
    )


def _beyond_the_calendar_in_utc(timestamp: str) -> bool:
    try:
        datetime.fromisoformat(timestamp).astimezone(UTC)
    except OverflowError:
        return True
    except ValueError:
        return False
    return False


CONTRACT_GAPS = [
    _timestamp_outside_utc_calendar,
    _only_foreign_prefetch_keys_invalid,
    _yaml_body_described_as_a_string,
    _selection_not_among_drafts,
    _prefetch_value_the_key_cannot_hold,
    _expires_in_beyond_64_bits,
]


@schema.hook
def filter_failure(
    context: schemathesis.HookContext, failure: Failure, case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    return not any(gap(failure, case, response) for gap in CONTRACT_GAPS)


# ----- a FHIR server on loopback for the fallback fetch -------------------------------------------


class _FhirHandler(BaseHTTPRequestHandler):
    """`…/Patient/<id>` answers that Patient; a search (`…/<Type>?…`) an empty searchset; anything
    else 404 with an OperationOutcome."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        read = re.search(r"/Patient/([A-Za-z0-9\-.]{1,64})$", parts.path)
        if read and not parts.query:
            status, body = 200, {"resourceType": "Patient", "id": read.group(1)}
        elif re.search(r"/[A-Z][A-Za-z]+$", parts.path) and parts.query:
            status, body = 200, {"resourceType": "Bundle", "type": "searchset", "total": 0}
        else:
            status, body = (
                404,
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]},
            )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        pass


@pytest.fixture(scope="module")
def fhir_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FhirHandler)
    with serving_in_a_thread(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"


# ----- the service under gunicorn -------------------------------------------------------------------


@dataclass
class Target:
    server: Gunicorn
    fhir_base: str
    # Per service id: the uuid of each card it issued at start -> that card's suggestion uuids.
    issued: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base


def _contract_example(name: str) -> dict[str, Any]:
    return copy.deepcopy(RAW["components"]["examples"][name]["value"])


def _issue_cards(base: str) -> dict[str, dict[str, list[str]]]:
    """Call two services with the contract's examples; their cards can then get feedback."""
    issued = {}
    for service_id, example in (
        ("acne-scar-treatment", "PatientViewRequest"),
        ("acne-scar-order-sign", "OrderSignRequest"),
    ):
        response = requests.post(f"{base}/cds-services/{service_id}", json=_contract_example(example), timeout=10)
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        assert cards, f"the contract's {example} gave no card"
        issued[service_id] = {c["uuid"]: [s["uuid"] for s in c.get("suggestions", [])] for c in cards}
    return issued


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, fhir_base: str) -> Iterator[Target]:
    work = tmp_path_factory.mktemp("fuzz")
    env = {
        "DATABASE_URL": f"sqlite:///{work}/cds.sqlite3",
        "WEB_CONCURRENCY": "2",
        "CDS_TODAY": "2026-11-26",
        "AUTH_MODE": "off",
        "LOG_LEVEL": "WARNING",
        # Defence in depth: a fetch from anything but loopback goes to a closed loopback port.
        "HTTP_PROXY": CLOSED,
        "HTTPS_PROXY": CLOSED,
        "http_proxy": CLOSED,
        "https_proxy": CLOSED,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with gunicorn(env, work / "gunicorn.log") as server:
        services = requests.get(f"{server.base}/cds-services", timeout=10).json()["services"]
        SERVICE_PREFETCH_KEYS.update({s["id"]: set(s["prefetch"]) for s in services})
        yield Target(server, fhir_base, _issue_cards(server.base))
    log = (work / "gunicorn.log").read_text(errors="replace")
    crashes = [line for line in log.splitlines() if "Traceback" in line or '"level": "ERROR"' in line]
    assert not crashes, "the service logged errors while fuzzed:\n" + "\n".join(crashes)[-8000:]


def _prepare(case: schemathesis.Case, target: Target) -> None:
    """Keep fetches on loopback; send a valid hook call to its service; feedback real cards."""
    body: Any = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("fhirServer"), str):
        body["fhirServer"] = SCHEME_AND_HOST.sub(target.fhir_base, body["fhirServer"], count=1)
    path_id = (case.path_parameters or {}).get("id")
    if _operation_id(case) == "callService":
        positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
        if positive and body.get("hook") in HOOK_SERVICE:
            case.path_parameters["id"] = HOOK_SERVICE[body["hook"]]
        if positive and body.get("hook") == "order-select":
            _select_drafts(body.get("context"))
        _use_the_services_prefetch_keys(body, SERVICE_PREFETCH_KEYS.get(case.path_parameters.get("id", ""), set()))
    elif path_id in target.issued and isinstance(body.get("feedback"), list):
        cards = target.issued[path_id]
        uuids = list(cards)
        for n, item in enumerate(body["feedback"]):
            if not isinstance(item, dict) or not isinstance(item.get("card"), str) or not UUID.match(item["card"]):
                continue
            item["card"] = card = uuids[n % len(uuids)]
            accepted = item.get("acceptedSuggestions")
            if not cards[card] or not isinstance(accepted, list):
                continue
            for m, suggestion in enumerate(accepted):
                if (
                    isinstance(suggestion, dict)
                    and isinstance(suggestion.get("id"), str)
                    and UUID.match(suggestion["id"])
                ):
                    suggestion["id"] = cards[card][m % len(cards[card])]


def _use_the_services_prefetch_keys(body: dict[str, Any], keys: set[str]) -> None:
    """Generated prefetch keys are random names, which the service ignores: give the values to
    the keys the service reads (each key's schema is the same), so that they are parsed."""
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, dict):
        return
    free = [k for k in sorted(keys) if k not in prefetch]
    for foreign in [k for k in prefetch if k not in keys][: len(free)]:
        prefetch[free.pop(0)] = prefetch.pop(foreign)


SELECTION = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _select_drafts(context: Any) -> None:
    """order-select: let the selections name drafts of the batch, as an EHR's do."""
    if not isinstance(context, dict) or not isinstance(context.get("selections"), list):
        return
    draft_orders = context.get("draftOrders")
    entries = draft_orders.get("entry") if isinstance(draft_orders, dict) else None
    resources = [e.get("resource") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    drafts = [f"{r.get('resourceType')}/{r.get('id')}" for r in resources if isinstance(r, dict)]
    drafts = [d for d in drafts if SELECTION.match(d)]
    if drafts:
        context["selections"] = [drafts[n % len(drafts)] for n in range(len(context["selections"]))]


@pytest.mark.fuzz
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
def test_every_operation_keeps_the_contract(case: schemathesis.Case, target: Target) -> None:
    _prepare(case, target)
    case.call_and_validate(base_url=target.base, timeout=10)


# ----- regression tests: one minimal request per defect the fuzzing found ------------------------


def _response_errors(path: str, method: str, status: int, body: Any) -> list[str]:
    """Why `body` does not follow the contract's schema for that answer ([] when it does)."""
    response = RAW["paths"][path][method]["responses"].get(str(status))
    if response is None:
        return [f"{status} is not a documented answer of {method.upper()} {path}"]
    if "$ref" in response:
        response = RAW["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    validator = _validator(response["content"]["application/json"]["schema"])
    return [e.message for e in validator.iter_errors(body)]


def test_a_token_that_http_cannot_carry_is_refused_not_a_crash(client: FlaskClient) -> None:
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
        "fhirServer": f"{CLOSED}/fhir",
        "fhirAuthorization": {
            "access_token": "t\u2713",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "ehr",
        },
    }
    response = client.post("/cds-services/acne-scar-treatment", json=body)
    assert response.status_code in (400, 412), response.get_json()
    assert _response_errors("/cds-services/{id}", "post", response.status_code, response.get_json()) == []


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_feedback_time_at_the_edge_of_the_calendar_is_an_answer_not_a_crash(
    client: FlaskClient, timestamp: str
) -> None:
    issued = client.post("/cds-services/acne-scar-treatment", json=_contract_example("PatientViewRequest"))
    card = issued.get_json()["cards"][0]["uuid"]
    response = client.post(
        "/cds-services/acne-scar-treatment/feedback",
        json={"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": timestamp}]},
    )
    assert response.status_code in (200, 400), response.get_json()
    assert _response_errors("/cds-services/{id}/feedback", "post", response.status_code, response.get_json()) == []
    if response.status_code == 400:
        assert "outcomeTimestamp" in json.dumps(response.get_json()["errors"])
