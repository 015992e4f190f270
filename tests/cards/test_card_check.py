"""The card rules checked in full once per content, and cheaply per call (cards.card_check).

Start-up renders every catalogue card and builds every draft the rules can suggest, through the
full CDS Hooks card rules; a fault stops the boot, naming it. Per call, the compiled check must
find every fault the full rules find, in what a chart can put into a card.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cards.card_rules import card_problems
from cards.engine import Engine
from cards.errors import ContentError
from tests.support.content import edit_catalogue
from tests.support.scenarios import ALL, engine_cards

ENGINE = Engine.load()
Card = dict[str, Any]


def every_example_card() -> list[Card]:
    return [card for _, scenario in ALL for _, card in engine_cards(ENGINE, scenario)[1]]


def test_every_card_of_every_example_patient_passes_both_checks() -> None:
    cards = every_example_card()
    assert len(cards) > 40
    for card in cards:
        assert card_problems(card) is None, card
        assert ENGINE.card_check.problems(card) is None, card


def full_card() -> Card:
    """A card with every part a mutation can break: suggestions (create and delete), links and
    override reasons."""
    cards = every_example_card()
    card = copy.deepcopy(
        next(c for c in cards if any("resource" in a for s in c.get("suggestions", ()) for a in s["actions"]))
    )
    card["overrideReasons"] = copy.deepcopy(next(c["overrideReasons"] for c in cards if "overrideReasons" in c))
    card["suggestions"].append(
        {
            "label": "Remove",
            "uuid": "0b9e3f3e-6c55-4d1e-9b53-0d6f6c1b1d11",
            "actions": [{"type": "delete", "description": "Remove", "resourceId": "ServiceRequest/x"}],
        }
    )
    assert card["links"]
    return card


def draft(card: Card) -> dict[str, Any]:
    resource: dict[str, Any] = card["suggestions"][0]["actions"][0]["resource"]
    return resource


MUTATIONS: dict[str, Callable[[Card], object]] = {
    "no uuid": lambda c: c.pop("uuid"),
    "a uuid that is not one": lambda c: c.update(uuid="card-1"),
    "a summary of 140 characters": lambda c: c.update(summary="x" * 140),
    "an empty summary": lambda c: c.update(summary=""),
    "an indicator CDS Hooks lacks": lambda c: c.update(indicator="urgent"),
    "a field CDS Hooks lacks": lambda c: c.update(priority=1),
    "an empty detail": lambda c: c.update(detail=""),
    "a source without label": lambda c: c["source"].pop("label"),
    "a link that is not a URL": lambda c: c["links"][0].update(url="pubmed 123"),
    "appContext on an absolute link": lambda c: c["links"][0].update(appContext="x"),
    "no links in the list": lambda c: c.update(links=[]),
    "suggestions without selectionBehavior": lambda c: c.pop("selectionBehavior"),
    "at-most-one with two recommended": lambda c: (
        c.update(selectionBehavior="at-most-one"),
        [s.update(isRecommended=True) for s in c["suggestions"]],
    ),
    "a suggestion without label": lambda c: c["suggestions"][0].pop("label"),
    "isRecommended not a boolean": lambda c: c["suggestions"][0].update(isRecommended="maybe"),
    "an action of a type CDS Hooks lacks": lambda c: c["suggestions"][0]["actions"][0].update(type="replace"),
    "a create without a resource": lambda c: c["suggestions"][0]["actions"][0].pop("resource"),
    "a delete without a resourceId": lambda c: c["suggestions"][-1]["actions"][0].pop("resourceId"),
    "a draft with a code FHIR cannot read": lambda c: draft(c).update(status="in  progress"),
    "a draft with a number for its subject": lambda c: draft(c).update(subject={"reference": 12}),
    "a draft with an empty reference": lambda c: draft(c).update(subject={"reference": ""}),
    "a draft of a type FHIR lacks": lambda c: draft(c).update(resourceType="ScarOrder"),
    "a draft with an element FHIR lacks": lambda c: draft(c).update(urgency="soon"),
    "an override reason without display": lambda c: c["overrideReasons"][0].pop("display"),
    "an override reason with an empty code": lambda c: c["overrideReasons"][0].update(code=""),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_per_call_check_finds_what_the_full_rules_find(mutation: str) -> None:
    card = full_card()
    assert card_problems(card) is None and ENGINE.card_check.problems(card) is None
    MUTATIONS[mutation](card)
    assert card_problems(card) is not None, "the mutation must break the card rules"
    assert ENGINE.card_check.problems(card) is not None


def test_a_draft_of_a_shape_not_checked_at_start_up_is_validated_in_full() -> None:
    card = full_card()
    draft(card)["note"] = [{"text": "written by hand"}]  # valid FHIR, not a shape the builders make
    assert ENGINE.card_check.problems(card) is None
    draft(card)["note"] = [{"text": 7}]
    assert ENGINE.card_check.problems(card) is not None


def test_a_draft_template_that_is_not_valid_fhir_stops_the_boot(content: Path) -> None:
    # FHIR's code type allows no double space: the retinoid template's RxNorm code broken.
    edit_catalogue(content, lambda c: c["suggestions"]["retinoid"]["coding"].update(code="313  453"))
    with pytest.raises(ContentError, match="the draft of the retinoid is not valid FHIR R4"):
        Engine.load(content)


def test_a_procedure_whose_draft_is_not_valid_fhir_stops_the_boot(content: Path) -> None:
    # FHIR's string type allows no empty string: the draft names its procedure by its display.
    path = content / "codesystems" / "acne-scar-procedure.json"
    data = json.loads(path.read_text())
    next(c for c in data["concept"] if c["code"] == "tca-cross")["display"] = ""
    path.write_text(json.dumps(data))
    with pytest.raises(ContentError, match=r"the draft of procedure 'tca-cross' is not valid FHIR R4: Invalid Servi"):
        Engine.load(content)


def test_a_card_the_catalogue_words_against_the_card_rules_stops_the_boot(content: Path) -> None:
    edit_catalogue(content, lambda c: c["source"].update(label=""))  # §Card Attributes: source.label required
    with pytest.raises(ContentError, match="breaks the CDS Hooks card rules"):
        Engine.load(content)
