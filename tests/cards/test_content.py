"""The card catalogue, value sets and code systems are checked at start-up: a broken file
stops the boot with a message that names the problem, never a request."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cards.catalogue import Catalogue
from cards.engine import USES, Engine
from cards.errors import ContentError
from cards.resources import RawResource
from cards.terminology import Terminology
from tests.support.content import edit_catalogue
from tests.support.paths import FIXTURE_TODAY, FIXTURES, load_json


def test_shipped_content_loads() -> None:
    engine = Engine.load()
    assert "treatment-plan-ice-pick" in engine.catalogue.cards
    assert engine.terminology["isotretinoin"].has_code("http://www.nlm.nih.gov/research/umls/rxnorm", "197843")


def test_summary_of_140_characters_stops_the_boot(content: Path) -> None:
    edit_catalogue(content, lambda d: d["cards"]["pregnancy"].update(summary="x" * 140))
    with pytest.raises(ContentError, match="'pregnancy': summary can reach 140 characters"):
        Catalogue.load(content)


def test_summary_with_a_date_is_measured_at_its_longest(content: Path) -> None:
    edit_catalogue(content, lambda d: d["cards"]["pregnancy"].update(summary="y" * 129 + " ${last_dose}"))
    with pytest.raises(ContentError, match="summary can reach 140 characters"):
        Catalogue.load(content)


@pytest.mark.parametrize("promise", ["Cures ice-pick scars", "Eliminates scarring", "94% improvement"])
def test_promising_a_cure_stops_the_boot(content: Path, promise: str) -> None:
    """GUIDELINE §1: improvement, not elimination; no quoted response rates."""
    edit_catalogue(content, lambda d: d["cards"]["treatment-plan-ice-pick"].update(detail=promise))
    with pytest.raises(ContentError, match="promises too much"):
        Catalogue.load(content)


def test_warning_without_override_reasons_stops_the_boot(content: Path) -> None:
    edit_catalogue(content, lambda d: d["cards"]["keloid-history"].update(override_reasons=[]))
    with pytest.raises(ContentError, match="override_reasons"):
        Catalogue.load(content)


def test_unknown_evidence_key_stops_the_boot(content: Path) -> None:
    edit_catalogue(content, lambda d: d["cards"]["keloid-history"].update(evidence=["Nobody 2031"]))
    with pytest.raises(ContentError, match="Nobody 2031"):
        Catalogue.load(content)


def test_broken_value_set_stops_the_boot(content: Path) -> None:
    (content / "valuesets" / "keloid.json").write_text('{"resourceType": "ValueSet"')
    with pytest.raises(ContentError, match="keloid.json"):
        Terminology.load(content)


def test_value_sets_label_unverified_codes() -> None:
    """GUIDELINE: codes it marks unverified are labelled so inside the value set."""
    terminology = Terminology.load()
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert (rxnorm, "6064") in terminology["isotretinoin"].unverified
    assert (rxnorm, "197843") not in terminology["isotretinoin"].unverified
    # v2 verified LOINC 82810-3 (US Core pregnancy status) and its SNOMED CT answers.
    assert ("http://loinc.org", "82810-3") not in terminology["pregnancy-status"].unverified
    assert ("http://loinc.org", "82810-3") in terminology["pregnancy-status"].codes


def test_l70_2_acne_varioliformis_is_not_a_scar_code() -> None:
    terminology = Terminology.load()
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    assert not terminology["skin-scar-unspecified"].has_code(icd, "L70.2")
    assert not terminology["acne"].has_code(icd, "L70.2")
    assert terminology["acne"].has_code(icd, "L70.0")


def test_icd10cm_codes_match_their_descendants() -> None:
    herpes = Terminology.load()["herpes-simplex"]
    assert herpes.has_code("http://hl7.org/fhir/sid/icd-10-cm", "B00.81")
    assert herpes.has_code("http://hl7.org/fhir/sid/icd-10-cm", "b001")
    assert not herpes.has_code("http://hl7.org/fhir/sid/icd-10-cm", "B01.9")


def test_evidence_links_use_verified_pmids_or_a_search() -> None:
    """Guideline v2 §4: PubMed by verified PMID, the DOI where given, otherwise a PubMed search
    for the title (never a guessed id); the product labels on DailyMed."""
    catalogue = Catalogue.load()
    links = {e.key: e for card in catalogue.cards.values() for e in card.evidence}
    links |= {e.key: e for section in catalogue.plan_sections.values() for e in section.evidence}
    assert links["Lee 2002"].url == "https://pubmed.ncbi.nlm.nih.gov/12460296/"
    assert links["Spring 2017"].url == "https://pubmed.ncbi.nlm.nih.gov/28658462/"
    assert links["Waldman 2017"].url == "https://pubmed.ncbi.nlm.nih.gov/28498204/"
    assert links["Gilbert 2000"].url == "https://pubmed.ncbi.nlm.nih.gov/10632686/"
    assert links["Cochrane 2016"].url == "https://doi.org/10.1002/14651858.CD011946.pub2"
    assert links["Gilbert 2001"].url == "https://doi.org/10.1093/jac/47.suppl_1.29"
    assert links["Beeson 2002"].url.startswith("https://pubmed.ncbi.nlm.nih.gov/?term=")
    assert links["Labels"].url.startswith("https://dailymed.nlm.nih.gov/dailymed/search.cfm?query=")
    assert "darker skin types" in links["Khunger 2011"].citation  # v2: the title, corrected
    assert {e.label.rsplit(" (", 1)[1] for e in links.values()} <= {"PubMed)", "DOI)", "PubMed search)", "DailyMed)"}


# ----- every reference from the code to the content is checked at boot (cards.uses) -------------


def remove_concept(path: Path, code: str) -> None:
    system = json.loads(path.read_text())
    system["concept"] = [c for c in system["concept"] if c["code"] != code]
    path.write_text(json.dumps(system))


def remove_caution(path: Path, caution: str) -> None:
    system = json.loads(path.read_text())
    for concept in system["concept"]:
        concept["property"] = [p for p in concept.get("property", []) if p.get("valueCode") != caution]
    path.write_text(json.dumps(system))


PROCEDURES = Path("codesystems") / "acne-scar-procedure.json"
REMOVALS: dict[str, tuple[Callable[[Path], object], str]] = {
    "card": (
        lambda root: edit_catalogue(root, lambda d: d["cards"].pop("active-acne")),
        "card 'active-acne' (cards.rules)",
    ),
    "withheld-reason": (
        lambda root: edit_catalogue(root, lambda d: d["withheld"].pop("R5-pregnancy")),
        "withheld reason 'R5-pregnancy' (cards.rules)",
    ),
    "plan-section": (
        lambda root: edit_catalogue(root, lambda d: d["plan_sections"].pop("expectations")),
        "plan section 'expectations' (cards.plan)",
    ),
    "plan": (lambda root: edit_catalogue(root, lambda d: d["plans"].pop("rolling")), "plan 'rolling' (cards.plan)"),
    "suggestion": (lambda root: edit_catalogue(root, lambda d: d["suggestions"].pop("remove_label")), "remove_label"),
    "value-set": (
        lambda root: (root / "valuesets" / "keloid.json").unlink(),
        "value set 'keloid' (cards.record, cards.resources)",
    ),
    "code-system": (
        lambda root: (root / "codesystems" / "acne-scar-morphology.json").unlink(),
        "code system 'acne-scar-morphology' (cards.record)",
    ),
    "concept-map": (
        lambda root: (root / "conceptmaps" / "cpt-to-acne-scar-procedure.json").unlink(),
        "concept map 'cpt-to-acne-scar-procedure' (cards.orders)",
    ),
    "procedure": (
        lambda root: remove_concept(root / PROCEDURES, "non-ablative-fractional-laser"),
        "procedure 'non-ablative-fractional-laser' (cards.order_rules)",
    ),
    "procedure-caution": (
        lambda root: remove_caution(root / PROCEDURES, "isotretinoin-judgement"),
        "procedure caution 'isotretinoin-judgement' (cards.order_rules)",
    ),
}


@pytest.mark.parametrize("kind", REMOVALS)
def test_content_without_an_entry_the_rules_use_stops_the_boot_naming_it(content: Path, kind: str) -> None:
    """Without the check, content lacking an entry loads, and the first patient call that needs
    it is a 500 (or a caution no procedure carries: a safety rule that vetoes nothing)."""
    remove, named = REMOVALS[kind]
    Engine.load(content)  # the copy loads as shipped
    remove(content)
    with pytest.raises(ContentError, match=re.escape(named)):
        Engine.load(content)


class Recording(dict[str, Any]):
    """A content table that notes every key the engine reads from it."""

    def __init__(self, data: Mapping[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)


def resources_of(request: dict[str, Any]) -> list[RawResource]:
    """The resources of a fixture request's prefetch (Bundles unpacked)."""
    out = []
    for value in request.get("prefetch", {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            out += [RawResource(e["resource"], "prefetch") for e in value.get("entry", [])]
        elif isinstance(value, dict):
            out.append(RawResource(value, "prefetch"))
    return out


def test_what_the_rules_read_from_the_content_is_what_they_declare(engine: Engine) -> None:
    """The declarations `Engine.load` checks are true: every catalogue entry, value set and code
    system the engine reads for the fixture patients and order requests is declared (cards.uses)."""
    seen: dict[str, set[str]] = {
        kind: set() for kind in ("cards", "sections", "withheld", "plans", "suggestions", "valuesets", "codesystems")
    }
    tables: dict[str, Any] = {
        field: Recording(getattr(engine.catalogue, field), seen[kind])
        for kind, field in [
            ("cards", "cards"),
            ("sections", "plan_sections"),
            ("withheld", "withheld"),
            ("plans", "plans"),
            ("suggestions", "suggestions"),
        ]
    }
    catalogue = replace(engine.catalogue, **tables)
    terminology = replace(
        engine.terminology,
        valuesets=Recording(engine.terminology.valuesets, seen["valuesets"]),
        codesystems=Recording(engine.terminology.codesystems, seen["codesystems"]),
    )
    recording = replace(
        engine,
        catalogue=catalogue,
        terminology=terminology,
        plan_content=replace(engine.plan_content, catalogue=catalogue),
    )
    for path in sorted((FIXTURES / "requests").glob("*.json")):
        request = load_json(path)
        recording.evaluate_resources(request["context"]["patientId"], resources_of(request), FIXTURE_TODAY)
    for path in sorted((FIXTURES / "orders").glob("*.json")):
        request = load_json(path)
        drafts = [RawResource(e["resource"], "draft") for e in request["context"]["draftOrders"]["entry"]]
        recording.evaluate_orders(
            request["context"]["patientId"],
            resources_of(request),
            drafts,
            FIXTURE_TODAY,
            set(request["context"].get("selections", [])) or None,
        )
    declared = {kind: set().union(*(getattr(use, kind) for use in USES)) for kind in seen}
    assert seen["cards"] and seen["sections"] and seen["valuesets"]
    assert {kind: sorted(names - declared[kind]) for kind, names in seen.items()} == dict.fromkeys(seen, [])
