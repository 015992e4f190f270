"""What a rule concludes, before the catalogue turns it into a card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cards.concepts import Evidence

RETINOID = "retinoid"  # the caution of a Block that vetoes every retinoid (not a procedure caution)


@dataclass(frozen=True)
class Block:
    """A safety rule's veto on suggestions: every procedure carrying `caution` (or, for
    caution "retinoid", every retinoid) is left out, for the reason keyed `reason` in the
    catalogue's `withheld` table."""

    caution: str
    reason: str


@dataclass(frozen=True)
class Suggestion:
    """A one-click action: create a draft FHIR resource, or delete a draft order (`resource_id`).
    `key` names what is suggested (a procedure code, "topical-retinoid", "remove-order") so
    feedback can be counted per suggestion."""

    key: str
    label: str
    description: str
    resource: Mapping[str, Any] | None = None
    recommended: bool = False
    resource_id: str | None = None

    def action(self) -> dict[str, Any]:
        """The CDS Hooks action (§Action): create with a resource, delete with a resourceId."""
        if self.resource_id is not None:
            return {"type": "delete", "description": self.description, "resourceId": self.resource_id}
        return {"type": "create", "description": self.description, "resource": dict(self.resource or {})}


@dataclass(frozen=True)
class Finding:
    """A rule that fired: which catalogue card, with which values, on which data."""

    card: str
    params: Mapping[str, str] = field(default_factory=dict)
    basis: tuple[Evidence, ...] = ()
    blocks: tuple[Block, ...] = ()
    sections: tuple[str, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    withheld: tuple[str, ...] = ()
