"""Rules for draft orders (order-select, order-sign): the moment a clinician orders a scar
procedure or a retinoid, one function per guideline rule. An order that is safe gets no card.

Each card names the order it is about and offers to remove it (a `delete` action on the draft)
or to order something safer instead (a `create` action).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date

from cards.concepts import Evidence
from cards.dates import add_months
from cards.findings import Finding, Suggestion
from cards.medications import ISOTRETINOIN_WAIT_MONTHS
from cards.orders import Order
from cards.plan import PlanContent
from cards.record import PatientRecord
from cards.suggested import antiviral_request, procedure_request
from cards.uses import Uses

TYPICAL_COURSE_MONTHS = 6  # an isotretinoin course with no dosage bounds is taken to last this long

OrderRule = Callable[[PatientRecord, Order, Sequence[Order], date, PlanContent], Finding | None]
ALTERNATIVE = "non-ablative-fractional-laser"  # R4: the preferred energy-based option


def _remove(order: Order, content: PlanContent, recommended: bool = True) -> Suggestion:
    label = content.catalogue.suggestions["remove_label"].replace("${order}", order.label)
    return Suggestion(
        "remove-order",
        label,
        f"Remove the draft order {order.reference}",
        recommended=recommended,
        resource_id=order.reference,
    )


def _has(order: Order, caution: str) -> bool:
    return order.procedure is not None and caution in order.procedure.cautions


def _basis(order: Order, *facts: Evidence) -> tuple[Evidence, ...]:
    return (Evidence(order.reference, f"draft order: {order.label}"), *facts)


def _within_isotretinoin_window(record: PatientRecord, today: date) -> bool:
    """Isotretinoin is current, its last dose unknown, or it was less than 6 months ago."""
    exposure = record.isotretinoin
    if exposure.status in ("current", "unknown") or (exposure.status == "past" and exposure.last_dose is None):
        return True
    last = exposure.last_dose
    return exposure.status == "past" and last is not None and today < add_months(last, ISOTRETINOIN_WAIT_MONTHS)


def procedure_after_isotretinoin(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R3 (Spring 2017; Waldman 2017): fully ablative laser, laser punch-out or mechanical
    dermabrasion ordered within 6 months of the last isotretinoin dose (or while it is
    current, or its last dose is unknown). GUIDELINE §1 (v2): a medication on record that
    cannot be identified might be isotretinoin: confirm it first."""
    exposure = record.isotretinoin
    if not _has(order, "isotretinoin-defer"):
        return None
    suggestions = (_remove(order, content),)
    basis = _basis(order, *exposure.evidence)
    if exposure.status == "current":
        return Finding("order-isotretinoin-current", basis=basis, suggestions=suggestions)
    if exposure.status == "unknown" or (exposure.status == "past" and exposure.last_dose is None):
        return Finding("order-isotretinoin-unknown", basis=basis, suggestions=suggestions)
    if _within_isotretinoin_window(record, today):
        assert exposure.last_dose is not None
        defer_until = add_months(exposure.last_dose, ISOTRETINOIN_WAIT_MONTHS)
        params = {"last_dose": exposure.last_dose.isoformat(), "defer_until": defer_until.isoformat()}
        return Finding("order-isotretinoin-recent", params, basis, suggestions=suggestions)
    if unidentified := record.unidentified_within(today):
        return Finding(
            "order-isotretinoin-unconfirmed",
            basis=_basis(order, *unidentified),
            suggestions=(_remove(order, content, recommended=False),),
        )
    return None


def peel_after_isotretinoin(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R3 (v2): a medium or deep chemical peel within 6 months of isotretinoin. No consensus
    addresses it (Spring 2017 and Waldman 2017 found no reason to delay superficial peels only)
    and the label advises 6 months: information for the clinician's judgement, no removal."""
    if not _has(order, "isotretinoin-judgement"):
        return None
    exposure = record.isotretinoin
    if _within_isotretinoin_window(record, today):
        when = (
            f"last dose {exposure.last_dose.isoformat()}"
            if exposure.status == "past" and exposure.last_dose
            else "current or last dose unknown"
        )
        return Finding("order-peel-after-isotretinoin", {"when": when}, _basis(order, *exposure.evidence))
    if unidentified := record.unidentified_within(today):  # GUIDELINE §1: it could be isotretinoin
        return Finding(
            "order-peel-after-isotretinoin",
            {"when": "a medication on record could not be identified"},
            _basis(order, *unidentified),
        )
    return None


def retinoid_in_pregnancy(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R5 (labels: isotretinoin boxed warning and iPLEDGE; tazarotene contraindicated): any
    retinoid ordered for a patient recorded as pregnant (critical), or whose pregnancy status is
    uncertain (v2: confirm it first). A medication that cannot be identified might be one."""
    status = record.pregnancy.status
    if status not in ("pregnant", "uncertain") or not (order.retinoid or order.unidentified):
        return None
    basis = _basis(order, *record.pregnancy.evidence)
    if not order.retinoid:
        return Finding(
            "order-medication-unidentified-pregnancy",
            basis=basis,
            suggestions=(_remove(order, content, recommended=False),),
        )
    card = "order-retinoid-pregnancy" if status == "pregnant" else "order-retinoid-pregnancy-uncertain"
    return Finding(card, basis=basis, suggestions=(_remove(order, content),))


def isotretinoin_before_planned_procedure(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R3, the other way round: isotretinoin ordered while fully ablative laser or mechanical
    dermabrasion is booked (or in this batch) before 6 months after the course's last dose. The
    course ends on the order's dosage bounds, or is taken to last 6 months (a typical course).
    Isotretinoin for scarring acne is strongly recommended (AAD 2024): the card suggests moving
    the procedure (removing it when it is a draft of this batch), not dropping isotretinoin."""
    if not order.isotretinoin:
        return None
    course_end = order.course_end or add_months(today, TYPICAL_COURSE_MONTHS)
    safe_from = add_months(course_end, ISOTRETINOIN_WAIT_MONTHS)
    planned = [
        p
        for p in (*record.planned_procedures, *batch)
        if p.reference != order.reference
        and _has(p, "isotretinoin-defer")
        and (p.occurrence is None or today <= p.occurrence < safe_from)
    ]
    if not planned:
        return None
    facts = [
        Evidence(p.reference, f"planned: {p.label}" + (f" on {p.occurrence}" if p.occurrence else "")) for p in planned
    ]
    drafts = {o.reference for o in batch}
    moves = tuple(_remove(p, content) for p in planned if p.reference in drafts)
    return Finding(
        "order-isotretinoin-procedure-planned",
        {"safe_from": safe_from.isoformat()},
        _basis(order, *facts),
        suggestions=(*moves, _remove(order, content, recommended=False)),
    )


def procedure_in_pregnancy(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R5: elective scar procedures wait until after pregnancy, or until an uncertain pregnancy
    status is confirmed (v2)."""
    status = record.pregnancy.status
    if status not in ("pregnant", "uncertain") or not _has(order, "scar-procedure"):
        return None
    card = "order-procedure-pregnancy" if status == "pregnant" else "order-procedure-pregnancy-uncertain"
    return Finding(
        card,
        basis=_basis(order, *record.pregnancy.evidence),
        suggestions=(_remove(order, content, recommended=status == "pregnant"),),
    )


def procedure_over_active_acne(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R2 (AAD 2024): control active acne before scar procedures; no resurfacing over lesions."""
    if not record.active_acne or not _has(order, "scar-procedure"):
        return None
    return Finding(
        "order-procedure-active-acne",
        basis=_basis(order, *record.active_acne),
        suggestions=(_remove(order, content, recommended=False),),
    )


def procedure_in_skin_of_colour(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R4 (Khunger 2011): Fitzpatrick IV-VI and full-field ablative laser, deep peel or
    aggressive dermabrasion; non-ablative fractional laser is offered instead."""
    skin = record.skin_type
    if skin is None or skin.value < 4 or not _has(order, "skin-of-colour-avoid"):
        return None
    alternative = content.procedures[ALTERNATIVE]
    instead = Suggestion(
        ALTERNATIVE,
        content.catalogue.suggestions["instead_label"].replace("${procedure}", alternative.display),
        f"Create a draft order: {alternative.display}",
        procedure_request(alternative, record.patient_id, content.procedure_system),
    )
    return Finding(
        "order-skin-of-colour",
        {"skin_type": skin.roman},
        _basis(order, skin.evidence),
        suggestions=(_remove(order, content), instead),
    )


def procedure_with_keloid_history(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R6 (Jacob 2001): punch techniques, TCA CROSS, ablative laser, dermabrasion and a keloid
    history: test spot, conservative approach."""
    if not record.keloid or not _has(order, "keloid-risk"):
        return None
    return Finding(
        "order-keloid", basis=_basis(order, *record.keloid), suggestions=(_remove(order, content, recommended=False),)
    )


def procedure_with_herpes(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """R7 (Gilbert 2000; Gilbert 2001; Beeson 2002): active herpes defers resurfacing, and any
    other wounding procedure at the site is the clinician's judgement. Prophylaxis is common
    practice for every patient having ablative laser, medium or deep peels or dermabrasion (v2),
    whatever their history: suggested when no antiviral is ordered in this batch; with one
    already on record, check that it covers the procedure period."""
    if record.herpes_active and _has(order, "scar-procedure"):
        if not _has(order, "hsv-risk"):
            return Finding("order-herpes-active-site", basis=_basis(order, *record.herpes_active))
        return Finding(
            "order-herpes-active", basis=_basis(order, *record.herpes_active), suggestions=(_remove(order, content),)
        )
    at_risk = _has(order, "hsv-risk") if record.herpes_history else _has(order, "full-face-resurfacing")
    if not at_risk or any(o.antiviral for o in batch):
        return None
    if record.antivirals:
        return Finding("order-antiviral-on-record", basis=_basis(order, *record.antivirals))
    card = "order-herpes-prophylaxis" if record.herpes_history else "order-resurfacing-prophylaxis"
    return Finding(card, basis=_basis(order, *record.herpes_history), suggestions=(_antiviral(record, content),))


def _antiviral(record: PatientRecord, content: PlanContent) -> Suggestion:
    spec = content.catalogue.suggestions["antiviral"]
    resource = antiviral_request(content.catalogue, record.patient_id)
    return Suggestion(
        "valacyclovir-prophylaxis",
        spec["label"],
        f"Create a draft prescription: {spec['text']}",
        resource,
        recommended=True,
    )


def unreadable_draft(
    record: PatientRecord, order: Order, batch: Sequence[Order], today: date, content: PlanContent
) -> Finding | None:
    """GUIDELINE §1 (v2): a draft order of which nothing could be read cannot be checked by any
    rule; silence would read as "this order is safe", so a warning says so."""
    if not order.unreadable:
        return None
    return Finding("order-unreadable", basis=_basis(order))


ORDER_RULES: tuple[OrderRule, ...] = (
    retinoid_in_pregnancy,
    procedure_in_pregnancy,
    procedure_over_active_acne,
    procedure_after_isotretinoin,
    peel_after_isotretinoin,
    isotretinoin_before_planned_procedure,
    procedure_in_skin_of_colour,
    procedure_with_keloid_history,
    procedure_with_herpes,
    unreadable_draft,
)
# One antiviral course covers the session; one check of the course on record is enough.
ONCE_PER_BATCH = ("order-herpes-prophylaxis", "order-resurfacing-prophylaxis", "order-antiviral-on-record")


def once_per_batch(findings: Sequence[Finding]) -> list[Finding]:
    """Merge repeated findings that must appear once per order batch (their bases joined), so
    that accepting every card's suggestion cannot order the same prophylaxis twice."""
    merged: list[Finding] = []
    first: dict[str, int] = {}
    for finding in findings:
        if finding.card not in ONCE_PER_BATCH:
            merged.append(finding)
        elif finding.card in first:
            kept = merged[first[finding.card]]
            basis = kept.basis + tuple(e for e in finding.basis if e not in kept.basis)
            merged[first[finding.card]] = replace(kept, basis=basis)
        else:
            first[finding.card] = len(merged)
            merged.append(finding)
    return merged


USES = Uses.of(
    __name__,
    cards=(
        "order-isotretinoin-current",
        "order-isotretinoin-unknown",
        "order-isotretinoin-recent",
        "order-isotretinoin-unconfirmed",
        "order-peel-after-isotretinoin",
        "order-medication-unidentified-pregnancy",
        "order-retinoid-pregnancy",
        "order-retinoid-pregnancy-uncertain",
        "order-isotretinoin-procedure-planned",
        "order-procedure-pregnancy",
        "order-procedure-pregnancy-uncertain",
        "order-procedure-active-acne",
        "order-skin-of-colour",
        "order-keloid",
        "order-herpes-active-site",
        "order-herpes-active",
        "order-antiviral-on-record",
        "order-herpes-prophylaxis",
        "order-resurfacing-prophylaxis",
        *ONCE_PER_BATCH,
    ),
    suggestions=("remove_label", "instead_label", "antiviral"),
    procedures=(ALTERNATIVE,),
    cautions=(
        "isotretinoin-defer",
        "isotretinoin-judgement",
        "scar-procedure",
        "skin-of-colour-avoid",
        "keloid-risk",
        "hsv-risk",
    ),
)
