"""The procedure catalogue: the local acne-scar-procedure CodeSystem and its safety cautions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cards.errors import ContentError


@dataclass(frozen=True)
class Procedure:
    """One scar procedure and the cautions (isotretinoin-defer, keloid-risk, ...) it carries."""

    code: str
    display: str
    cautions: frozenset[str]


def load_procedures(codesystem: Mapping[str, Any]) -> dict[str, Procedure]:
    """Read the procedures, keyed by code, from the acne-scar-procedure CodeSystem."""
    procedures = {}
    for concept in codesystem.get("concept", []):
        cautions = frozenset(p["valueCode"] for p in concept.get("property", []) if p.get("code") == "caution")
        if "code" not in concept or "display" not in concept:
            raise ContentError(f"acne-scar-procedure: concept without code or display: {concept}")
        procedures[concept["code"]] = Procedure(concept["code"], concept["display"], cautions)
    if not procedures:
        raise ContentError("acne-scar-procedure: no concepts")
    return procedures
