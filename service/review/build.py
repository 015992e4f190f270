"""What the review package shows, gathered from the engine and the fixtures, then written as pages.

Every card of the catalogue is shown as an EHR shows it: the card the engine gave a fixture patient
(the fixture with the fewest other cards, so the example is plain), or, for a card no fixture
triggers, the catalogue's words with the rule's values left as ‹placeholders› and a flag saying
so. Beside it: its rule and where the specification states it, its evidence (linked), the
fixture patients that trigger it (fixtures/patients/*.json through the engine, as
`acne-scar-cds evaluate` does; fixtures/orders/*.json through the service's own hook path), and
what it withholds (the blocks its rule raised in those fixtures, and the procedures they hold
back). Then the data each rule reads (content/data-elements.yaml), the value sets and code
systems, the fixtures, the fingerprint and the sign-off, what changed since a previous package,
and, from a database, the feedback dashboard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import count
from pathlib import Path
from string import Template
from typing import Any

import requests
import yaml

from cards.catalogue import CardContent
from cards.engine import Engine
from cards.errors import CardsError, ContentError
from cards.findings import Block, Finding
from cards.plan import SKIN_TYPE_UNKNOWN_BLOCK as SKIN_TYPE_UNKNOWN
from cards.render import RenderedCard, by_severity, render
from cards.terminology import ICD10CM, LOINC, RXNORM, SNOMED, UNVERIFIED
from service.cli import find_patient_id, read_resources
from service.errors import ServiceError
from service.fhir_client import FetchPolicy
from service.fhir_servers import AllowedFhirServers
from service.governance import CORE, ContentReview
from service.hooks import call_service
from service.registry import Registry, default_registry
from service.review.changes import Changes, snapshot_of
from service.review.html import slug

FIXTURE_TODAY = date(2026, 11, 26)  # the date every fixture is written against (fixtures/README.md)
SPECIFICATION = CORE.parent / "docs" / "clinical-specification.md"
FIXTURES = CORE.parent / "fixtures"
SYSTEMS = {
    SNOMED: "SNOMED CT",
    ICD10CM: "ICD-10-CM",
    LOINC: "LOINC",
    RXNORM: "RxNorm",
    "http://www.whocc.no/atc": "ATC",
    "http://www.ama-assn.org/go/cpt": "CPT",
}
PLACEHOLDER = "‹{}›"
RULE_HEADING = re.compile(r"^### \d+\.\d+ (R\d)\b")


@dataclass(frozen=True)
class FixtureRun:
    """One fixture through the engine: its cards, and the blocks each card's rule raised."""

    name: str  # "patients/isotretinoin-2-months"
    hook: str
    cards: tuple[RenderedCard, ...] = ()
    blocks: Mapping[str, tuple[Block, ...]] = field(default_factory=dict)
    error: str | None = None

    @property
    def anchor(self) -> str:
        return "fixture-" + self.name.replace("/", "-")

    def card_ids(self) -> list[str]:
        return [c.card_id for c in self.cards]


@dataclass(frozen=True)
class Withheld:
    """A block a card's rule raised: the reason in the catalogue's words, what it holds back."""

    reason: str
    text: str
    holds_back: str


@dataclass(frozen=True)
class CardReview:
    """One catalogue card as the committee reads it."""

    content: CardContent
    example: Mapping[str, Any]
    example_from: FixtureRun | None
    fixtures: tuple[FixtureRun, ...]
    withholds: tuple[Withheld, ...]
    services: tuple[str, ...]
    rule_section: str | None  # anchor in spec.html

    @property
    def id(self) -> str:
        return self.content.id


@dataclass(frozen=True)
class ValueSetView:
    """A value set, readable: its codes by system, unverified ones flagged."""

    name: str
    title: str
    url: str
    description: str
    codes: tuple[tuple[str, str, str, bool], ...]  # system label, code, display, unverified
    excluded: tuple[tuple[str, str], ...]
    text_terms: tuple[str, ...]

    @property
    def unverified(self) -> list[tuple[str, str, str, bool]]:
        return [c for c in self.codes if c[3]]


@dataclass(frozen=True)
class Package:
    """Everything the pages show."""

    engine: Engine
    review: ContentReview
    today: date
    cards: tuple[CardReview, ...]
    runs: tuple[FixtureRun, ...]
    elements: tuple[Mapping[str, Any], ...]
    valuesets: Mapping[str, ValueSetView]
    codesystems: Mapping[str, Mapping[str, Any]]
    conceptmaps: Mapping[str, Mapping[str, Any]]
    snapshot: Mapping[str, Any]
    changes: Changes | None = None
    since: str | None = None
    specification: str | None = None
    spec_sections: Mapping[str, str] = field(default_factory=dict)

    @property
    def untriggered(self) -> list[CardReview]:
        return [c for c in self.cards if not c.fixtures]


def system_label(system: str) -> str:
    """SNOMED CT, ICD-10-CM, ...; a local code system by its last path segment."""
    return SYSTEMS.get(system, system.rsplit("/", 1)[-1] if "acne-scar-cds" in system else system)


# ----- fixtures ---------------------------------------------------------------------------------


def run_patient(engine: Engine, path: Path, today: date) -> FixtureRun:
    """A patient Bundle as `acne-scar-cds evaluate` reads it, with each rule's blocks."""
    name = f"patients/{path.stem}"
    try:
        resources = read_resources(path)
        record = engine.record(find_patient_id(resources), resources, today)
        findings = engine.findings(record, today)
    except (OSError, ValueError, CardsError) as exc:
        return FixtureRun(name, "patient-view", error=str(exc))
    numbers = count(1)
    cards = by_severity([render(f, engine.catalogue, lambda: f"uuid-{next(numbers)}") for f in findings])
    return FixtureRun(name, "patient-view", tuple(cards), _blocks(findings, engine))


def _blocks(findings: Sequence[Finding], engine: Engine) -> dict[str, tuple[Block, ...]]:
    """Each finding's blocks; the plan's own (no skin type recorded) read from what it withheld."""
    blocks = {f.card: f.blocks for f in findings if f.blocks}
    unknown_type = engine.catalogue.withheld[SKIN_TYPE_UNKNOWN.reason]
    for finding in findings:
        if any(unknown_type in line for line in finding.withheld):
            blocks[finding.card] = (*blocks.get(finding.card, ()), SKIN_TYPE_UNKNOWN)
    return blocks


def run_order(engine: Engine, path: Path, today: date, registry: Registry) -> FixtureRun:
    """An order hook request through the service's own path (validated, prefetch read, checked);
    nothing is fetched: a fixture must carry its prefetch."""
    name = f"orders/{path.stem}"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return FixtureRun(name, "?", error=str(exc))
    service = next((s for s in registry if s.hook == body.get("hook")), None)
    if service is None:
        return FixtureRun(name, str(body.get("hook")), error="no service answers this hook")
    policy = FetchPolicy(0.1, 0.1, 0.1, 1, 1, AllowedFhirServers.of((), "the review package"))
    try:
        result = call_service(service, body, requests.Session(), policy, engine, today)
    except (CardsError, ServiceError) as exc:
        return FixtureRun(name, service.hook, error=getattr(exc, "message", str(exc)))
    return FixtureRun(name, service.hook, tuple(result.cards))


def run_fixtures(engine: Engine, fixtures: Path | None, today: date) -> list[FixtureRun]:
    """Every patient and order fixture, patients first, by name."""
    if fixtures is None or not fixtures.is_dir():
        return []
    registry = default_registry()
    runs = [run_patient(engine, p, today) for p in sorted((fixtures / "patients").glob("*.json"))]
    return runs + [run_order(engine, p, today, registry) for p in sorted((fixtures / "orders").glob("*.json"))]


# ----- cards ------------------------------------------------------------------------------------


def from_catalogue(content: CardContent, engine: Engine) -> dict[str, Any]:
    """A card no fixture triggers, rendered from the catalogue with its values as placeholders."""
    names = {
        m[1] or m[2]
        for text in (content.summary, content.detail)
        for m in Template.pattern.findall(text)
        if m[1] or m[2]
    }
    return render(
        Finding(content.id, {n: PLACEHOLDER.format(n) for n in names}), engine.catalogue, lambda: "uuid-template"
    ).card


def withheld(blocks: Iterable[Block], engine: Engine) -> tuple[Withheld, ...]:
    """Blocks in words, one per reason: the reason, and what its cautions hold back."""
    cautions: dict[str, list[str]] = {}
    for block in blocks:
        if block.caution not in cautions.setdefault(block.reason, []):
            cautions[block.reason].append(block.caution)
    return tuple(
        Withheld(reason, engine.catalogue.withheld.get(reason, reason), "; ".join(held_back(c, engine) for c in kinds))
        for reason, kinds in cautions.items()
    )


def held_back(caution: str, engine: Engine) -> str:
    """What a caution holds back: every retinoid, every scar procedure, or the procedures named."""
    if caution in ("retinoid", "scar-procedure"):
        return f"every {caution.replace('-', ' ')}"
    return ", ".join(p.display for p in engine.plan_content.procedures.values() if caution in p.cautions)


def card_reviews(engine: Engine, runs: Sequence[FixtureRun], rule_sections: Mapping[str, str]) -> list[CardReview]:
    reviews = []
    for cid, content in engine.catalogue.cards.items():
        fired = [r for r in runs if cid in r.card_ids()]
        plainest = min(fired, key=lambda r: (len(r.cards), r.name), default=None)
        example = (
            next(c.card for c in plainest.cards if c.card_id == cid) if plainest else from_catalogue(content, engine)
        )
        blocks = [b for r in fired for b in r.blocks.get(cid, ())]
        order = cid.startswith("order-")
        section = rule_sections.get(content.rule) if not order else rule_sections.get("orders")
        reviews.append(
            CardReview(
                content,
                example,
                plainest,
                tuple(fired),
                withheld(blocks, engine),
                tuple(dict.fromkeys(r.hook for r in fired)),
                section,
            )
        )
    return reviews


# ----- terminology ------------------------------------------------------------------------------


def valueset_view(name: str, data: Mapping[str, Any]) -> ValueSetView:
    codes = tuple(
        (
            system_label(c["system"]),
            c["code"],
            c.get("display", ""),
            any(e.get("url") == UNVERIFIED and e.get("valueBoolean") for e in c.get("extension", [])),
        )
        for c in data.get("expansion", {}).get("contains", [])
    )
    excluded = tuple(
        (system_label(g["system"]), c["code"])
        for g in data.get("compose", {}).get("exclude", [])
        for c in g.get("concept", [])
    )
    terms = tuple(e["valueString"] for e in data.get("extension", []) if e.get("url", "").endswith("/text-match"))
    return ValueSetView(
        name,
        data.get("title") or data.get("name") or name,
        data["url"],
        data.get("description", ""),
        codes,
        excluded,
        terms,
    )


def load_json_files(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def data_elements(content: Path, valuesets: Mapping[str, Any], codesystems: Mapping[str, Any]) -> list[dict[str, Any]]:
    """content/data-elements.yaml, checked against the value sets and code systems it names."""
    rows = yaml.safe_load((content / "data-elements.yaml").read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ContentError("data-elements.yaml: not a list of data elements")
    for row in rows:
        unknown = [v for v in row.get("valuesets", []) if v not in valuesets]
        unknown += [c for c in row.get("codesystems", []) if c not in codesystems]
        if unknown or not row.get("sources"):
            raise ContentError(
                f"data-elements.yaml: {row.get('element')!r} names unknown files {unknown} or no sources"
            )
    return rows


# ----- the specification ------------------------------------------------------------------------


def rule_sections(specification: str | None) -> dict[str, str]:
    """Rule id -> anchor of its section (§5.n); "§1" and "orders" -> theirs."""
    if specification is None:
        return {}
    sections: dict[str, str] = {}
    for line in specification.splitlines():
        title = line.lstrip("#").strip()
        if match := RULE_HEADING.match(line):
            sections.setdefault(match[1], slug(title))
        elif line.startswith("## 2. "):
            sections["§1"] = slug(title)  # P6: unreadable is not absent
        elif line.startswith("## 6. "):
            sections["orders"] = slug(title)
    return sections


# ----- the package ------------------------------------------------------------------------------


def gather(
    engine: Engine,
    review: ContentReview,
    fixtures: Path | None,
    today: date = FIXTURE_TODAY,
    specification: Path | None = SPECIFICATION,
) -> Package:
    """Everything the package shows, from the running engine, its content and the fixtures."""
    content = CORE / "content"
    spec = specification.read_text(encoding="utf-8") if specification and specification.is_file() else None
    runs = run_fixtures(engine, fixtures, today)
    raw_valuesets = load_json_files(content / "valuesets")
    codesystems = load_json_files(content / "codesystems")
    sections = rule_sections(spec)
    snapshot = snapshot_of(CORE, {r.name: r.card_ids() for r in runs})
    return Package(
        engine=engine,
        review=review,
        today=today,
        cards=tuple(card_reviews(engine, runs, sections)),
        runs=tuple(runs),
        elements=tuple(data_elements(content, raw_valuesets, codesystems)),
        valuesets={n: valueset_view(n, v) for n, v in raw_valuesets.items()},
        codesystems=codesystems,
        conceptmaps=load_json_files(content / "conceptmaps"),
        snapshot=snapshot,
        specification=spec,
        spec_sections=sections,
    )
