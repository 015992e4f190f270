"""The card rules (cards.card_rules) applied in full once per content, and cheaply per call.

A card holds two kinds of things: content (the catalogue's words, links and override reasons, the
templates of the drafts it suggests), the same on every call, and values from the chart (the
rule's parameters, the "Based on" lines, the references to the patient and to the records). A full
check of every card on every call (marshmallow over the card, a FHIR validation of every suggested
resource) cost half a call while checking the content again and again.

So `CardCheck.compile` checks the content at start-up: every catalogue card rendered with stand-in
values, and every draft the rules can suggest (cards.suggested) built for a stand-in patient, each
through the full rules; any fault stops the boot, naming the card or the draft. It keeps each
checked draft's *shape* (the draft with its references masked). Per call, `CardCheck.problems`
checks the card's structure in plain Python (the same rules as `card_rules.CardSchema`, field by
field) and each suggested resource against the shapes: a known shape needs only its references
checked; any other resource is validated in full, as before. Less repetition, never less checking.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from fhir.resources.R4B.reference import Reference
from marshmallow import ValidationError, validate
from pydantic import ValidationError as PydanticError

from cards.card_rules import INDICATORS, SELECTION_BEHAVIOURS, SUMMARY_LIMIT, card_problems, empty_fields, fhir_problem
from cards.catalogue import LONGEST_VALUE, Catalogue, placeholders
from cards.concepts import Evidence
from cards.errors import ContentError
from cards.findings import Finding, Suggestion
from cards.procedures import Procedure
from cards.render import render
from cards.suggested import every_draft

STAND_IN_PATIENT = "stand-in-patient"
STAND_IN_REASON = "Condition/stand-in-scar"
MASKED = {"reference": "(reference)"}  # where a shape had a reference

Check = Callable[[Any], bool]
Fields = Mapping[str, tuple[bool, Check]]  # field -> (required, check of its value)


@dataclass(frozen=True)
class CardCheck:
    """The per-call check, compiled from the content that start-up checked in full."""

    shapes: frozenset[bytes]

    @classmethod
    def compile(cls, catalogue: Catalogue, procedures: Mapping[str, Procedure], system: str) -> CardCheck:
        """Check every catalogue card and every draft with the full rules; ContentError on a fault."""
        drafts = list(every_draft(catalogue, procedures, system, STAND_IN_PATIENT, STAND_IN_REASON))
        for name, draft in drafts:
            if problem := fhir_problem(draft):
                raise ContentError(f"the draft of {name} is not valid FHIR R4: {problem}")
        check = cls(frozenset(shape(draft) for _, draft in drafts))
        create = Suggestion("stand-in", "Stand-in", "Create a stand-in", drafts[0][1], recommended=True)
        delete = Suggestion("stand-in-delete", "Stand-in", "Remove a stand-in", resource_id="ServiceRequest/stand-in")
        findings = [_stand_in(card_id, catalogue, (create, delete)) for card_id in catalogue.cards]
        # The plan sections, all in one card (each card above has none).
        findings.append(_stand_in(next(iter(catalogue.cards)), catalogue, (), tuple(catalogue.plan_sections)))
        for finding in findings:
            card = render(finding, catalogue).card
            if problems := card_problems(card) or check.problems(card):
                raise ContentError(f"card {finding.card!r} breaks the CDS Hooks card rules: {problems}")
        return check

    def problems(self, card: Mapping[str, Any]) -> dict[str, Any] | None:
        """What breaks the card rules in `card`, or None: the rules of `card_rules.card_problems`."""
        found = _fields(card, CARD, "") + _selection(card)
        found += [p for i, s in enumerate(card.get("suggestions") or ()) for p in self._drafts(s, f"suggestions[{i}]")]
        empty = empty_fields(card)
        return {"schema": found, "empty": empty} if found or empty else None

    def _drafts(self, suggestion: Any, path: str) -> list[str]:
        actions = suggestion.get("actions") if isinstance(suggestion, dict) else None
        return [
            f"{path}.actions[{i}].resource: {problem}"
            for i, action in enumerate(actions if isinstance(actions, list) else ())
            if isinstance(action, dict) and "resource" in action and (problem := self._draft(action["resource"]))
        ]

    def _draft(self, resource: Any) -> str | None:
        """A draft of a shape checked at start-up needs only its references checked."""
        if isinstance(resource, dict):
            masked, refs = _masked(resource)
            if orjson.dumps(masked, option=orjson.OPT_SORT_KEYS) in self.shapes:
                return next((f"reference {r[:80]!r}: {p}" for r in refs if (p := _reference(r))), None)
        return fhir_problem(resource)


def _stand_in(
    card_id: str, catalogue: Catalogue, suggestions: tuple[Suggestion, ...], sections: tuple[str, ...] = ()
) -> Finding:
    """A finding of `card_id` with a stand-in for every value its words and `sections` take."""
    texts = [catalogue[card_id].summary, catalogue[card_id].detail]
    texts += [catalogue.plan_sections[s].text for s in sections]
    params = {name: LONGEST_VALUE for text in texts for name in placeholders(text)}
    return Finding(
        card_id,
        params,
        basis=(Evidence(STAND_IN_REASON, "stand-in record"),),
        sections=sections,
        suggestions=suggestions,
        withheld=("stand-in procedure: stand-in reason",),
    )


def shape(resource: Mapping[str, Any]) -> bytes:
    """The resource with every reference masked and repeated masked references kept once: a
    draft's FHIR validity depends on its references only through each reference's own rules."""
    return orjson.dumps(_masked(resource)[0], option=orjson.OPT_SORT_KEYS)


def _masked(node: Any, refs: list[str] | None = None) -> tuple[Any, list[str]]:
    """The node with its references masked, and the references, in one walk."""
    refs = [] if refs is None else refs
    if isinstance(node, dict):
        if node.keys() == {"reference"} and isinstance(node["reference"], str):
            refs.append(node["reference"])
            return MASKED, refs
        return {k: _masked(v, refs)[0] for k, v in node.items()}, refs
    if isinstance(node, list):
        items = [_masked(v, refs)[0] for v in node]
        return [x for i, x in enumerate(items) if not (x == MASKED and i and items[i - 1] == MASKED)], refs
    return node, refs


@functools.lru_cache(maxsize=256)
def _reference(value: str) -> str | None:
    """Why `value` is not a valid FHIR R4 Reference.reference, or None (the library's own rule).
    Cached: a patient's reference repeats on every draft of a card."""
    try:
        Reference.model_validate({"reference": value})
    except PydanticError as exc:
        return str(exc.errors()[0]["msg"])
    return None


# -- The structure of a card, field by field (CDS Hooks 2.0.1 §Card Attributes; card_rules) -------


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _uuid(value: Any) -> bool:
    try:
        UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return isinstance(value, str)


URL = validate.URL()


def _url(value: Any) -> bool:
    try:
        URL(value)
    except (ValidationError, TypeError):
        return False
    return isinstance(value, str)


def _one_of(choices: Iterable[str]) -> Check:
    allowed = frozenset(choices)
    return lambda value: isinstance(value, str) and value in allowed


def _nested(spec: Fields, extra: Callable[[dict[str, Any]], bool] = lambda _: True) -> Check:
    return lambda value: isinstance(value, dict) and not _fields(value, spec, "") and extra(value)


def _list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and len(value) > 0 and all(check(v) for v in value)


def _fields(value: Mapping[str, Any], spec: Fields, path: str) -> list[str]:
    """Paths of the fields of `value` that `spec` lacks, misses or refuses."""
    found = [f"{path}{k}: unknown field" for k in value if k not in spec]
    for name, (required, check) in spec.items():
        if name not in value:
            found += [f"{path}{name}: missing"] if required else []
        elif not check(value[name]):
            found.append(f"{path}{name}: invalid")
    return found


def _action(action: dict[str, Any]) -> bool:
    if action["type"] in ("create", "update"):
        return isinstance(action.get("resource"), dict)  # its FHIR validity: CardCheck._draft
    return "resourceId" in action


def _selection(card: Mapping[str, Any]) -> list[str]:
    suggestions = card.get("suggestions")
    if not isinstance(suggestions, list) or not suggestions:
        return []
    if "selectionBehavior" not in card:
        return ["selectionBehavior: required with suggestions"]
    recommended = sum(1 for s in suggestions if isinstance(s, dict) and s.get("isRecommended"))
    if card["selectionBehavior"] == "at-most-one" and recommended > 1:
        return ["suggestions: at-most-one allows one recommended suggestion"]
    return []


CODING: Fields = {"system": (True, _text), "code": (True, _text), "display": (False, _text)}
ACTION: Fields = {
    "type": (True, _one_of(("create", "update", "delete"))),
    "description": (True, _text),
    "resource": (False, lambda v: isinstance(v, dict)),
    "resourceId": (False, _text),
}
SUGGESTION: Fields = {
    "label": (True, _text),
    "uuid": (False, _uuid),
    "isRecommended": (False, lambda v: isinstance(v, bool)),
    "actions": (False, _list_of(_nested(ACTION, _action))),
}
LINK: Fields = {
    "label": (True, _text),
    "url": (True, _url),
    "type": (True, _one_of(("absolute", "smart"))),
    "appContext": (False, _text),
}
SOURCE: Fields = {
    "label": (True, _text),
    "url": (False, _url),
    "icon": (False, _url),
    "topic": (False, _nested(CODING)),
}
CARD: Fields = {
    "uuid": (True, _uuid),
    "summary": (True, lambda v: _text(v) and len(v) < SUMMARY_LIMIT),
    "detail": (False, _text),
    "indicator": (True, _one_of(INDICATORS)),
    "source": (True, _nested(SOURCE)),
    "suggestions": (False, _list_of(_nested(SUGGESTION))),
    "selectionBehavior": (False, _one_of(SELECTION_BEHAVIOURS)),
    "overrideReasons": (False, _list_of(_nested({**CODING, "display": (True, _text)}))),
    "links": (False, _list_of(_nested(LINK, lambda link: "appContext" not in link or link["type"] == "smart"))),
}
