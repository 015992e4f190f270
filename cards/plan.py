"""R1, the treatment plan (with R8, scar age), and its one-click suggestions.

The plan is assembled from catalogue sections chosen by scar morphology and Goodman & Baron
grade; the procedures it suggests come from the catalogue's `plans` table, minus every one a
safety rule blocks (each left out with its reason, so the card says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from string import Template
from typing import Any

from cards.catalogue import Catalogue
from cards.dates import years_between
from cards.findings import RETINOID, Block, Finding, Suggestion
from cards.procedures import Procedure
from cards.record import PatientRecord, Scarring
from cards.suggested import procedure_request, retinoid_request
from cards.uses import PROCEDURE_SYSTEM, Uses

MORPHOLOGY_ORDER = ("ice-pick", "boxcar", "rolling")  # the plans, by morphology
MORPHOLOGY_SECTIONS = ("ice-pick", "rolling", "boxcar", "hypertrophic")
VARIANTS = (
    "treatment-plan-macular",
    "treatment-plan-ice-pick",
    "treatment-plan-rolling-boxcar",
    "treatment-plan-hypertrophic",
    "treatment-plan-unspecified",
)
PROCEDURE_PLANS = ("treatment-plan-ice-pick", "treatment-plan-rolling-boxcar")
# R1 (v2): the grade-tailored lines name techniques, so each plan has its own; the ice-pick
# lines (CROSS, punch excision) are never shown for rolling or boxcar scars.
GRADE_SECTIONS = {"treatment-plan-ice-pick": "grade-", "treatment-plan-rolling-boxcar": "rolling-boxcar-grade-"}
GRADED = (2, 3, 4)  # the grades with lines of their own (grade 1 is the macular plan)
OLD_SCAR_YEARS = 5  # R8 (expert opinion: no reference supports it)
# R4: with no Fitzpatrick type recorded, the plan itself withholds energy-based procedures.
SKIN_TYPE_UNKNOWN_BLOCK = Block("energy-based", "R4-skin-type-unknown")


@dataclass(frozen=True)
class PlanContent:
    """What R1 reads besides the record: the catalogue, the procedures and their system."""

    catalogue: Catalogue
    procedures: Mapping[str, Procedure]
    procedure_system: str


def plan_variant(scarring: Scarring) -> str:
    """Which plan card fits: macular, ice-pick, rolling/boxcar or unspecified morphology."""
    morphs = scarring.morphologies
    if scarring.grade == 1 or morphs == {"macular"}:
        return "treatment-plan-macular"
    if "ice-pick" in morphs:
        return "treatment-plan-ice-pick"
    if morphs & {"rolling", "boxcar"}:
        return "treatment-plan-rolling-boxcar"
    if morphs == {"hypertrophic"}:
        return "treatment-plan-hypertrophic"
    return "treatment-plan-unspecified"


def treatment_plan(record: PatientRecord, today: date, content: PlanContent, blocks: Sequence[Block]) -> Finding:
    """R1: the plan card, its sections, and suggestions minus what `blocks` veto."""
    scarring = record.scarring
    assert scarring is not None, "R1 runs only for patients with acne scarring"
    variant = plan_variant(scarring)
    blocks = list(blocks)
    if record.skin_type is None:
        blocks.append(SKIN_TYPE_UNKNOWN_BLOCK)
    codes, first_line = _procedures(scarring, variant, content.catalogue)
    if variant in PROCEDURE_PLANS and record.skin_type is not None and record.skin_type.value >= 4:
        extra = content.catalogue.plans["skin-of-colour"]["by_grade"]["unknown"]
        codes += [c for c in extra if c not in codes]
    allowed, withheld = _filter(codes, blocks, content)
    suggestions = [_procedure_suggestion(content.procedures[c], c in first_line, record, content) for c in allowed]
    retinoid, retinoid_withheld = _retinoid(record, blocks, content)
    basis = scarring.evidence + tuple(e for e in (scarring.grade_evidence,) if e)
    basis += tuple(e for e in (record.skin_type.evidence if record.skin_type else None,) if e)
    # R7 (v2): antiviral prophylaxis for every patient having full-face resurfacing; with a
    # herpes history, for any procedure at risk (the R7 card says so too).
    caution = "hsv-risk" if record.herpes_history or record.herpes_active else "full-face-resurfacing"
    resurfacing = any(caution in content.procedures[c].cautions for c in allowed)
    return Finding(
        card=variant,
        params={"scar_years": str(_scar_years(scarring, today) or "")},
        basis=basis + record.topical_retinoids + (record.antivirals if resurfacing else ()),
        sections=tuple(_sections(record, variant, today, retinoid_withheld, resurfacing)),
        suggestions=tuple(suggestions + retinoid),
        withheld=tuple(withheld + retinoid_withheld),
    )


def _procedures(scarring: Scarring, variant: str, catalogue: Catalogue) -> tuple[list[str], set[str]]:
    if variant == "treatment-plan-macular":
        return [], set()
    morphs = [m for m in MORPHOLOGY_ORDER if m in scarring.morphologies] or ["unspecified"]
    grade = str(scarring.grade) if scarring.grade else "unknown"
    codes: list[str] = []
    first_line: set[str] = set()
    for morph in morphs:
        plan = catalogue.plans[morph]
        by_grade = plan["by_grade"]
        codes += [c for c in by_grade.get(grade, by_grade["unknown"]) if c not in codes]
        first_line |= set(plan["first_line"])
    return codes, first_line


def _filter(codes: Iterable[str], blocks: Sequence[Block], content: PlanContent) -> tuple[list[str], list[str]]:
    allowed, withheld = [], []
    for code in codes:
        procedure = content.procedures[code]
        reasons = _unique(content.catalogue.withheld[b.reason] for b in blocks if b.caution in procedure.cautions)
        if reasons:
            withheld.append(f"{procedure.display}: {'; '.join(reasons)}")
        else:
            allowed.append(code)
    return allowed, withheld


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _sections(
    record: PatientRecord, variant: str, today: date, retinoid_withheld: list[str], resurfacing: bool
) -> Iterable[str]:
    scarring = record.scarring
    assert scarring is not None
    if variant == "treatment-plan-macular":
        yield "grade-1"
    else:
        yield from (m for m in MORPHOLOGY_SECTIONS if m in scarring.morphologies)
        if "ice-pick" in scarring.morphologies and scarring.morphologies & {"rolling", "boxcar"}:
            yield "mixed"
        if not scarring.grade:
            yield "grade-unknown"
        elif variant in GRADE_SECTIONS:
            yield f"{GRADE_SECTIONS[variant]}{scarring.grade}"
        if record.skin_type is None:
            yield "skin-type-unknown"
        if (_scar_years(scarring, today) or 0) > OLD_SCAR_YEARS:
            yield "scar-age-old"
        if resurfacing:  # R7 (v2): prophylaxis wherever the plan offers full-face resurfacing
            yield "hsv-antiviral-on-record" if record.antivirals else "hsv-prophylaxis"
        yield "expectations"
    if retinoid_withheld:
        yield "maintenance-deferred"
    else:
        yield "retinoid-in-use" if record.topical_retinoids else "maintenance"


def _scar_years(scarring: Scarring, today: date) -> int | None:
    return years_between(scarring.onset, today) if scarring.onset else None


def _reasons(record: PatientRecord) -> list[str]:
    assert record.scarring is not None
    return list(record.scarring.condition_references)


def _procedure_suggestion(
    procedure: Procedure, recommended: bool, record: PatientRecord, content: PlanContent
) -> Suggestion:
    resource = procedure_request(procedure, record.patient_id, content.procedure_system, _reasons(record))
    label = Template(content.catalogue.suggestions["procedure_label"]).substitute(procedure=procedure.display)
    return Suggestion(procedure.code, label, f"Create a draft order: {procedure.display}", resource, recommended)


def _retinoid(
    record: PatientRecord, blocks: Sequence[Block], content: PlanContent
) -> tuple[list[Suggestion], list[str]]:
    """Maintenance topical retinoid (AAD 2024: for acne; controlling acne prevents new scars): only
    when none is in use and no rule blocks it."""
    spec: Mapping[str, Any] = content.catalogue.suggestions["retinoid"]
    reasons = _unique(content.catalogue.withheld[b.reason] for b in blocks if b.caution == RETINOID)
    if reasons:
        return [], [f"{spec['text']}: {'; '.join(reasons)}"]
    if record.topical_retinoids:
        return [], []
    resource = retinoid_request(content.catalogue, record.patient_id, _reasons(record))
    label = Template(content.catalogue.suggestions["retinoid_label"]).substitute(medication=spec["text"])
    if record.pregnancy.status == "unknown" and record.gender != "male":
        label += "; confirm not pregnant"
    return [Suggestion("topical-retinoid", label, f"Create a draft prescription: {spec['text']}", resource)], []


USES = Uses.of(
    __name__,
    blocks=(SKIN_TYPE_UNKNOWN_BLOCK,),
    cards=VARIANTS,
    sections=(
        "grade-1",
        *MORPHOLOGY_SECTIONS,
        "mixed",
        "grade-unknown",
        *(f"{prefix}{grade}" for prefix in GRADE_SECTIONS.values() for grade in GRADED),
        "skin-type-unknown",
        "scar-age-old",
        "hsv-antiviral-on-record",
        "hsv-prophylaxis",
        "expectations",
        "maintenance-deferred",
        "retinoid-in-use",
        "maintenance",
    ),
    plans=(*MORPHOLOGY_ORDER, "unspecified", "skin-of-colour"),
    suggestions=("procedure_label", "retinoid_label", "retinoid"),
    codesystems=(PROCEDURE_SYSTEM,),
    cautions=("hsv-risk",),
)
