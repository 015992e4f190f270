"""Findings -> CDS Hooks 2.0.1 cards, through the catalogue.

JSON rule of CDS Hooks: optional fields with no value are omitted, never null or empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from string import Template
from typing import Any
from uuid import uuid4

from cards.catalogue import Catalogue, EvidenceLink
from cards.findings import Finding

UuidFactory = Callable[[], str]
SEVERITY = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class RenderedCard:
    """A CDS Hooks card, and the catalogue id of the rule that produced it (for feedback)."""

    card_id: str
    card: dict[str, Any]
    suggestion_keys: dict[str, str] = field(default_factory=dict)  # suggestion uuid -> key

    @property
    def indicator(self) -> str:
        return str(self.card["indicator"])


def new_uuid() -> str:
    return str(uuid4())


def render(finding: Finding, catalogue: Catalogue, make_uuid: UuidFactory = new_uuid) -> RenderedCard:
    """One finding as a card: summary, detail, source, evidence links, override reasons,
    suggestions."""
    content = catalogue[finding.card]
    evidence = _evidence(finding, catalogue)
    card: dict[str, Any] = {
        "uuid": make_uuid(),
        "summary": content.render_summary(finding.params),
        "indicator": content.indicator,
        "detail": _detail(finding, catalogue, evidence),
        "source": {"label": catalogue.source_label, "topic": dict(catalogue.topic)},
    }
    if evidence:  # CDS Hooks JSON rule: omit, never empty
        card["links"] = [{"label": e.label, "url": e.url, "type": "absolute"} for e in evidence]
    keys = {make_uuid(): s for s in finding.suggestions}
    if keys:
        card["suggestions"] = [
            {
                "label": s.label,
                "uuid": uuid,
                "isRecommended": s.recommended,
                "actions": [s.action()],
            }
            for uuid, s in keys.items()
        ]
        card["selectionBehavior"] = "any"
    if content.override_reasons:
        card["overrideReasons"] = [
            {"system": catalogue.override_reason_system, "code": code, "display": display}
            for code, display in content.override_reasons
        ]
    return RenderedCard(finding.card, card, {uuid: s.key for uuid, s in keys.items()})


def _evidence(finding: Finding, catalogue: Catalogue) -> list[EvidenceLink]:
    """The card's references, then those its sections cite, each once."""
    sections = [catalogue.plan_sections[s] for s in finding.sections]
    links = [*catalogue[finding.card].evidence, *(e for section in sections for e in section.evidence)]
    return list({e.key: e for e in links}.values())


def _detail(finding: Finding, catalogue: Catalogue, evidence: list[EvidenceLink]) -> str:
    content = catalogue[finding.card]
    parts = [content.render_detail(finding.params)]
    parts += [Template(catalogue.plan_sections[s].text).substitute(finding.params).strip() for s in finding.sections]
    if finding.withheld:
        parts.append("**Not suggested here:**\n" + "\n".join(f"- {w}" for w in finding.withheld))
    if finding.basis:
        parts.append("**Based on:**\n" + "\n".join(f"- {e}" for e in finding.basis))
    cited = f"Evidence: {'; '.join(e.key for e in evidence)}. " if evidence else ""
    rule = "rule " + content.rule if content.rule != "§1" else "§1, unreadable is not absent"
    parts.append(f"_{cited}{catalogue.source_label} ({rule})._")
    return "\n\n".join(parts)


def by_severity(cards: list[RenderedCard]) -> list[RenderedCard]:
    """Critical first, then warnings, then information; stable otherwise."""
    return sorted(cards, key=lambda c: SEVERITY[c.indicator])
