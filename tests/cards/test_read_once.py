"""Resources are read once per content (cards.reading.read_once; issue 18): the same chart opened
again is not validated again, and what a clinician sees never depends on what was read before."""

from __future__ import annotations

import copy
from typing import Any

from cards.engine import Engine
from cards.resources import RawResource
from tests.support.paths import FIXTURE_TODAY as TODAY
from tests.support.scenarios import patient_resources

ENGINE = Engine.load()


def cards(patient_id: str, resources: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rendered = ENGINE.evaluate_resources(patient_id, [RawResource(r, "fixture") for r in resources], TODAY)
    return [(c.card_id, c.card["summary"], c.card["detail"]) for c in rendered]


def isotretinoin(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == "MedicationStatement" and "isotretinoin" in str(r))


def test_a_record_changed_since_the_last_call_is_read_anew() -> None:
    patient_id, resources = patient_resources("isotretinoin-2-months")
    before = cards(patient_id, resources)
    assert any("2026-09-26" in summary for _, summary, _ in before)
    changed = copy.deepcopy(resources)
    isotretinoin(changed)["effectivePeriod"]["end"] = "2026-10-20"  # same id, a later last dose
    after = cards(patient_id, changed)
    assert any("2026-10-20" in summary for _, summary, _ in after)
    assert not any("2026-09-26" in summary for _, summary, _ in after)


def test_the_same_chart_gives_the_same_cards_every_time() -> None:
    patient_id, resources = patient_resources("isotretinoin-2-months")
    first = cards(patient_id, resources)
    assert cards(patient_id, copy.deepcopy(resources)) == first
    assert cards(patient_id, resources) == first


def test_what_could_not_be_read_is_said_on_every_call_not_only_the_first() -> None:
    patient_id, resources = patient_resources("isotretinoin-2-months")
    broken = copy.deepcopy(resources)
    isotretinoin(broken)["effectivePeriod"]["start"] = "2026-02-30"  # an impossible date: left out, and said
    first, second = cards(patient_id, broken), cards(patient_id, broken)
    assert first == second
    assert any("effectivePeriod.start" in detail for _, _, detail in second)
