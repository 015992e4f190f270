"""The card catalogue: clinical content as data, validated once at start-up.

`content/catalogue.yaml` holds every summary, detail, evidence key, override reason and plan
section; `content/evidence.yaml` the references. A catalogue that breaks a rule of CDS Hooks
2.0.1 (§Card Attributes: summary under 140 characters) or of the guideline (§1: no promise of
elimination) stops the boot, never a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote_plus

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from cards.card_rules import INDICATORS, SUMMARY_LIMIT
from cards.errors import ContentError

CONTENT = Path(__file__).parent / "content"
# GUIDELINE §1: advice is improvement, not elimination.
PROMISES = re.compile(
    r"\b(cure[sd]?|eliminat\w*|erase[sd]?|remove[sd]? (all|the) scar\w*|(?<![.\d])\d{2,3} ?%)", re.IGNORECASE
)
LONGEST_VALUE = "2099-12-31"  # summaries may only carry dates and short words


class CardEntrySchema(Schema):
    """One entry of the catalogue's `cards`: the words of a card before a rule fills them in."""

    # A guideline rule, or §1 for the principle "unreadable is not absent" itself.
    rule = fields.String(required=True, validate=validate.Regexp(r"^(R[1-8]|§1)$"))
    fires_when = fields.String(required=True, validate=validate.Length(min=1))
    indicator = fields.String(required=True, validate=validate.OneOf(INDICATORS))
    summary = fields.String(required=True, validate=validate.Length(min=1))
    detail = fields.String(required=True, validate=validate.Length(min=1))
    evidence = fields.List(fields.String(), required=True)
    override_reasons = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _warnings_can_be_overridden(self, data: dict[str, Any], **_: Any) -> None:
        if data["indicator"] != "info" and not data["override_reasons"]:
            raise ValidationError("warning and critical cards need override_reasons")

    @validates_schema
    def _rules_cite_evidence(self, data: dict[str, Any], **_: Any) -> None:
        """Every guideline rule names its evidence; §1 (a record that could not be read) has none."""
        if data["rule"] != "§1" and not data["evidence"]:
            raise ValidationError("a rule's card cites its evidence", "evidence")


class EvidenceSchema(Schema):
    """One reference: a verified PMID, else a DOI, else a PubMed title search (never a guessed
    id), or another page (`url`, named by `site`: the product labels on DailyMed)."""

    citation = fields.String(required=True)
    pmid = fields.String(validate=validate.Regexp(r"^\d{6,9}$"))
    doi = fields.String(validate=validate.Regexp(r"^10\.\d{4,9}/\S+$"))
    search = fields.String()
    url = fields.Url(schemes={"https"})
    site = fields.String()

    @validates_schema
    def _one_link(self, data: dict[str, Any], **_: Any) -> None:
        links = [k for k in ("pmid", "doi", "search", "url") if k in data]
        if len(links) != 1:
            raise ValidationError(f"give exactly one of pmid, doi, search, url (got {links or 'none'})")
        if "url" in data and "site" not in data:
            raise ValidationError("a url needs the name of its site", "site")


class PlanSchema(Schema):
    first_line = fields.List(fields.String(), required=True)
    by_grade = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class RetinoidSchema(Schema):
    coding = fields.Dict(required=True)
    text = fields.String(required=True)
    dosage = fields.String(required=True)


class AntiviralSchema(Schema):
    label = fields.String(required=True)
    text = fields.String(required=True)
    dosage = fields.String(required=True)


class SuggestionsSchema(Schema):
    procedure_label = fields.String(required=True)
    retinoid_label = fields.String(required=True)
    remove_label = fields.String(required=True)
    instead_label = fields.String(required=True)
    retinoid = fields.Nested(RetinoidSchema, required=True)
    antiviral = fields.Nested(AntiviralSchema, required=True)


class SectionSchema(Schema):
    """A plan section that cites references of its own (linked on the card that shows it)."""

    text = fields.String(required=True, validate=validate.Length(min=1))
    evidence = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class SectionField(fields.Field[dict[str, Any]]):
    """A plan section: its text, or {text, evidence}."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, str):
            return {"text": value, "evidence": []}
        return dict(SectionSchema().load(value))


class CatalogueSchema(Schema):
    guideline = fields.Dict(required=True)
    source = fields.Dict(required=True)
    override_reasons = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    cards = fields.Dict(keys=fields.String(), values=fields.Nested(CardEntrySchema), required=True)
    plan_sections = fields.Dict(keys=fields.String(), values=SectionField(), required=True)
    plans = fields.Dict(keys=fields.String(), values=fields.Nested(PlanSchema), required=True)
    suggestions = fields.Nested(SuggestionsSchema, required=True)
    withheld = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


@dataclass(frozen=True)
class EvidenceLink:
    """One reference a card cites, with its link and the name of the site it opens."""

    key: str
    citation: str
    url: str
    site: str

    @property
    def label(self) -> str:
        return f"{self.key} ({self.site})"


@dataclass(frozen=True)
class Section:
    """A section of a card's detail (the plan's, mostly), and the references it cites."""

    text: str
    evidence: tuple[EvidenceLink, ...] = ()


@dataclass(frozen=True)
class CardContent:
    """One catalogue entry: what a card says before the rule fills in its values."""

    id: str
    rule: str
    fires_when: str
    indicator: str
    summary: str
    detail: str
    evidence: tuple[EvidenceLink, ...]
    override_reasons: tuple[tuple[str, str], ...]

    def render_summary(self, params: Mapping[str, str]) -> str:
        return Template(self.summary).substitute(params)

    def render_detail(self, params: Mapping[str, str]) -> str:
        return Template(self.detail).substitute(params).strip()


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue: cards by id, plan sections, plans, suggestion content."""

    source_label: str
    topic: Mapping[str, str]
    guideline_version: str
    cards: Mapping[str, CardContent]
    plan_sections: Mapping[str, Section]
    plans: Mapping[str, Mapping[str, Any]]
    suggestions: Mapping[str, Any]
    withheld: Mapping[str, str]
    override_reason_system: str

    def __getitem__(self, card_id: str) -> CardContent:
        return self.cards[card_id]

    @classmethod
    def load(cls, root: Path = CONTENT) -> Catalogue:
        """Load and check catalogue.yaml and evidence.yaml; ContentError on any fault."""
        raw = _load_yaml(root / "catalogue.yaml")
        evidence_raw = _load_yaml(root / "evidence.yaml")
        try:
            data = CatalogueSchema().load(raw)
            evidence = {k: EvidenceSchema().load(v) for k, v in evidence_raw.items()}
        except ValidationError as exc:
            raise ContentError(f"card catalogue is invalid: {exc.messages}") from exc
        links = {key: _link(key, item) for key, item in evidence.items()}
        cards = {cid: _card(cid, c, links, data["override_reasons"]) for cid, c in data["cards"].items()}
        for cid, card in cards.items():
            _check_wording(cid, card)
        return cls(
            source_label=data["source"]["label"],
            topic=data["source"]["topic"],
            guideline_version=str(data["guideline"]["version"]),
            cards=cards,
            plan_sections={key: _section(key, item, links) for key, item in data["plan_sections"].items()},
            plans=data["plans"],
            suggestions=data["suggestions"],
            withheld=data["withheld"],
            override_reason_system=f"{data['source']['topic']['system'].rsplit('/', 1)[0]}/override-reason",
        )


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContentError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ContentError(f"{path}: not a mapping")
    return data


def _link(key: str, item: Mapping[str, str]) -> EvidenceLink:
    if "pmid" in item:
        return EvidenceLink(key, item["citation"], f"https://pubmed.ncbi.nlm.nih.gov/{item['pmid']}/", "PubMed")
    if "doi" in item:
        return EvidenceLink(key, item["citation"], f"https://doi.org/{item['doi']}", "DOI")
    if "search" in item:
        url = f"https://pubmed.ncbi.nlm.nih.gov/?term={quote_plus(item['search'])}"
        return EvidenceLink(key, item["citation"], url, "PubMed search")
    return EvidenceLink(key, item["citation"], item["url"], item["site"])


def _section(key: str, item: Mapping[str, Any], links: Mapping[str, EvidenceLink]) -> Section:
    if unknown := [k for k in item["evidence"] if k not in links]:
        raise ContentError(f"plan section {key!r} cites unknown evidence {unknown}")
    return Section(item["text"], tuple(links[k] for k in item["evidence"]))


def _card(cid: str, c: Mapping[str, Any], links: Mapping[str, EvidenceLink], reasons: Mapping[str, str]) -> CardContent:
    unknown = [k for k in c["evidence"] if k not in links]
    unknown_reasons = [r for r in c["override_reasons"] if r not in reasons]
    if unknown or unknown_reasons:
        raise ContentError(f"card {cid!r} cites unknown evidence {unknown} or reasons {unknown_reasons}")
    return CardContent(
        id=cid,
        rule=c["rule"],
        fires_when=c["fires_when"],
        indicator=c["indicator"],
        summary=c["summary"].strip(),
        detail=c["detail"],
        evidence=tuple(links[k] for k in c["evidence"]),
        override_reasons=tuple((r, reasons[r]) for r in c["override_reasons"]),
    )


def placeholders(text: str) -> set[str]:
    """The names of the ${...} values a rule fills into `text`."""
    return {m[1] or m[2] for m in Template.pattern.findall(text) if m[1] or m[2]}


def _check_wording(cid: str, card: CardContent) -> None:
    longest = card.render_summary(dict.fromkeys(placeholders(card.summary), LONGEST_VALUE))
    if len(longest) >= SUMMARY_LIMIT:
        raise ContentError(f"card {cid!r}: summary can reach {len(longest)} characters (limit {SUMMARY_LIMIT - 1})")
    for text in (card.summary, card.detail):
        if match := PROMISES.search(text):
            raise ContentError(f"card {cid!r} promises too much: {match.group(0)!r}")
