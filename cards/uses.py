"""What the code reads from the content, declared beside the code that reads it, checked at boot.

Each rule module declares (`Uses`) the catalogue entries it can emit or read (cards, plan
sections, withheld reasons, plans, suggestion content), the value sets, code systems and concept
maps it matches against, and the procedures and procedure cautions it names. `Engine.load`
refuses content that lacks any of them (`unmet`), naming each missing entry and the module that
needs it. Without the check such content loads cleanly, and the first patient call that needs
the entry is a 500, or, for a caution no procedure carries, a safety rule that vetoes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

from cards.catalogue import Catalogue
from cards.findings import RETINOID, Block
from cards.procedures import Procedure
from cards.terminology import Terminology

PROCEDURE_SYSTEM = "acne-scar-procedure"  # the local CodeSystem of the scar procedures


@dataclass(frozen=True)
class Uses:
    """The content entries one module can emit or read, by kind."""

    module: str
    cards: frozenset[str] = frozenset()
    sections: frozenset[str] = frozenset()  # the catalogue's plan_sections
    withheld: frozenset[str] = frozenset()  # the catalogue's withheld reasons
    plans: frozenset[str] = frozenset()
    suggestions: frozenset[str] = frozenset()  # keys of the catalogue's suggestions
    valuesets: frozenset[str] = frozenset()
    codesystems: frozenset[str] = frozenset()
    conceptmaps: frozenset[str] = frozenset()
    procedures: frozenset[str] = frozenset()  # codes of the acne-scar-procedure CodeSystem
    cautions: frozenset[str] = frozenset()  # each carried by at least one procedure

    @classmethod
    def of(cls, module: str, blocks: Iterable[Block] = (), **kinds: Iterable[str]) -> Uses:
        """A module's uses; `blocks` add their withheld reasons and cautions."""
        blocks = list(blocks)
        sets = {kind: frozenset(names) for kind, names in kinds.items()}
        sets["withheld"] = sets.get("withheld", frozenset()) | {b.reason for b in blocks}
        sets["cautions"] = sets.get("cautions", frozenset()) | {b.caution for b in blocks if b.caution != RETINOID}
        return cls(module, **sets)


# What each kind is called in a refusal, and where the content keeps it.
KINDS = {
    "cards": "card",
    "sections": "plan section",
    "withheld": "withheld reason",
    "plans": "plan",
    "suggestions": "suggestion",
    "valuesets": "value set",
    "codesystems": "code system",
    "conceptmaps": "concept map",
    "procedures": "procedure",
    "cautions": "procedure caution",
}


def available(
    catalogue: Catalogue, terminology: Terminology, procedures: Mapping[str, Procedure]
) -> dict[str, frozenset[str]]:
    """What the content holds, by kind."""
    return {
        "cards": frozenset(catalogue.cards),
        "sections": frozenset(catalogue.plan_sections),
        "withheld": frozenset(catalogue.withheld),
        "plans": frozenset(catalogue.plans),
        "suggestions": frozenset(catalogue.suggestions),
        "valuesets": frozenset(terminology.valuesets),
        "codesystems": frozenset(terminology.codesystems),
        "conceptmaps": frozenset(terminology.conceptmaps),
        "procedures": frozenset(procedures),
        "cautions": frozenset(c for p in procedures.values() for c in p.cautions),
    }


def unmet(uses: Iterable[Uses], content: Mapping[str, frozenset[str]]) -> list[str]:
    """Each entry a module uses that the content lacks: "card 'active-acne' (cards.rules)"."""
    missing: dict[str, list[str]] = {}
    for use in uses:
        for kind in (f.name for f in fields(Uses) if f.name != "module"):
            for name in sorted(getattr(use, kind) - content[kind]):
                missing.setdefault(f"{KINDS[kind]} {name!r}", []).append(use.module)
    return [f"{entry} ({', '.join(modules)})" for entry, modules in missing.items()]
