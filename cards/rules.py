"""The safety rules R2-R7 of GUIDELINE.md §3, one function each, citing their evidence.

Each rule reads the patient record and today's date and returns a Finding or None. Findings
carry Blocks: the treatment plan (R1, `cards.plan`) leaves out every suggestion a block
vetoes, so warnings stack (a patient 3 months after isotretinoin with Fitzpatrick V skin gets
both R3 and R4, and R1 omits what either blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from cards.dates import add_months
from cards.findings import RETINOID, Block, Finding
from cards.medications import ISOTRETINOIN_WAIT_MONTHS
from cards.record import PatientRecord
from cards.uses import Uses

Rule = Callable[[PatientRecord, date], Finding | None]
OLDER_ADVICE_MONTHS = 12  # source article and older teaching
ACTIVE_ACNE_BLOCK = Block("scar-procedure", "R2-active-acne")
ISOTRETINOIN_BLOCK = Block("isotretinoin-defer", "R3-isotretinoin")
UNCONFIRMED_BLOCK = Block("isotretinoin-defer", "R3-medication-unidentified")
SKIN_OF_COLOUR_BLOCKS = (
    Block("skin-of-colour-avoid", "R4-skin-of-colour"),
    Block("skin-of-colour-prefer-non-ablative", "R4-prefer-non-ablative"),
)
PREGNANCY_BLOCKS = (Block("scar-procedure", "R5-pregnancy"), Block(RETINOID, "R5-pregnancy"))
UNCERTAIN_BLOCKS = (Block("scar-procedure", "R5-pregnancy-uncertain"), Block(RETINOID, "R5-pregnancy-uncertain"))
KELOID_BLOCK = Block("keloid-risk", "R6-keloid")
HERPES_ACTIVE_BLOCK = Block("hsv-risk", "R7-herpes-active")


def active_acne_first(record: PatientRecord, today: date) -> Finding | None:
    """R2 (AAD 2024, about acne: scarring is a reason to escalate acne therapy): control active
    acne before scar procedures."""
    if not record.active_acne:
        return None
    return Finding("active-acne", basis=record.active_acne, blocks=(ACTIVE_ACNE_BLOCK,))


def isotretinoin_timing(record: PatientRecord, today: date) -> Finding | None:
    """R3 (Spring 2017; Waldman 2017): fully ablative laser and mechanical dermabrasion wait
    6 months after the last isotretinoin dose; with pregnancy, isotretinoin is critical."""
    exposure = record.isotretinoin
    if exposure.status == "current" and record.pregnancy.status == "pregnant":
        return Finding(
            "isotretinoin-pregnancy",
            basis=exposure.evidence + record.pregnancy.evidence,
            blocks=(ISOTRETINOIN_BLOCK, *PREGNANCY_BLOCKS),
        )
    if exposure.status == "current":
        planned = {}
        if exposure.last_dose:  # a course with a planned end: give the date (R3)
            planned = {
                "planned_end": exposure.last_dose.isoformat(),
                "defer_until": add_months(exposure.last_dose, ISOTRETINOIN_WAIT_MONTHS).isoformat(),
            }
        return Finding(
            "isotretinoin-current",
            planned,
            exposure.evidence,
            (ISOTRETINOIN_BLOCK,),
            sections=("isotretinoin-planned-end",) if planned else (),
        )
    if exposure.status == "unknown":
        return Finding("isotretinoin-last-dose-unknown", basis=exposure.evidence, blocks=(ISOTRETINOIN_BLOCK,))
    if exposure.status != "past" or exposure.last_dose is None:
        return None
    last = exposure.last_dose
    defer_until = add_months(last, ISOTRETINOIN_WAIT_MONTHS)
    older_advice = add_months(last, OLDER_ADVICE_MONTHS)
    params = {
        "last_dose": last.isoformat(),
        "defer_until": defer_until.isoformat(),
        "twelve_months": older_advice.isoformat(),
    }
    if today < defer_until:
        return Finding("isotretinoin-recent", params, exposure.evidence, (ISOTRETINOIN_BLOCK,))
    if today < older_advice:
        return Finding("isotretinoin-window-passed", params, exposure.evidence)
    return None


def medication_unidentified(record: PatientRecord, today: date) -> Finding | None:
    """R3 with GUIDELINE §1 (v2): a medication record that could be in the last 6 months and
    cannot be identified might be isotretinoin; ask to confirm before fully ablative laser or
    dermabrasion. Silent when isotretinoin is current or its last dose unknown (that card
    already defers them and asks)."""
    unidentified = record.unidentified_within(today)
    if not unidentified or record.isotretinoin.status in ("current", "unknown"):
        return None
    return Finding("isotretinoin-unconfirmed", basis=unidentified, blocks=(UNCONFIRMED_BLOCK,))


def skin_of_colour(record: PatientRecord, today: date) -> Finding | None:
    """R4 (Khunger 2011): Fitzpatrick IV-VI, high risk of post-inflammatory hyperpigmentation."""
    skin = record.skin_type
    if skin is None or skin.value < 4:
        return None
    return Finding("skin-of-colour", {"skin_type": skin.roman}, (skin.evidence,), SKIN_OF_COLOUR_BLOCKS)


def pregnancy(record: PatientRecord, today: date) -> Finding | None:
    """R5 (product labels: isotretinoin boxed warning, tazarotene): defer elective procedures, no
    retinoids. With current isotretinoin the critical R3 card says all of this, so this warning
    stays silent then. Pregnancy status uncertain (v2): confirm it first; until then the
    retinoid and procedure suggestions are withheld."""
    status = record.pregnancy.status
    if status == "uncertain":
        return Finding("pregnancy-uncertain", basis=record.pregnancy.evidence, blocks=UNCERTAIN_BLOCKS)
    if status != "pregnant" or record.isotretinoin.status == "current":
        return None
    return Finding("pregnancy", basis=record.pregnancy.evidence, blocks=PREGNANCY_BLOCKS)


def keloid_history(record: PatientRecord, today: date) -> Finding | None:
    """R6 (Jacob 2001): keloid risk with punch, ablative laser, dermabrasion and CROSS."""
    if not record.keloid:
        return None
    return Finding("keloid-history", basis=record.keloid, blocks=(KELOID_BLOCK,))


def herpes_simplex(record: PatientRecord, today: date) -> Finding | None:
    """R7 (Gilbert 2000; Beeson 2002): active lesions defer resurfacing; a history needs the full
    prophylaxis regimen, or, with an antiviral already on record, a check that it covers the
    procedure period."""
    if record.herpes_active:
        return Finding("herpes-active", basis=record.herpes_active, blocks=(HERPES_ACTIVE_BLOCK,))
    if record.herpes_history and record.antivirals:
        return Finding("herpes-history-antiviral", basis=record.herpes_history + record.antivirals)
    if record.herpes_history:
        return Finding("herpes-history", basis=record.herpes_history)
    return None


def records_of_another_patient(record: PatientRecord, today: date) -> Finding | None:
    """GUIDELINE §1 (v2): records naming another patient were sent with this chart. They are
    never read as this patient's, nor dropped in silence: the advice may lack what they hold."""
    return Finding("records-other-patient", basis=record.foreign) if record.foreign else None


SAFETY_RULES: tuple[Rule, ...] = (
    active_acne_first,
    isotretinoin_timing,
    medication_unidentified,
    skin_of_colour,
    pregnancy,
    keloid_history,
    herpes_simplex,
    records_of_another_patient,
)

USES = Uses.of(
    __name__,
    blocks=(
        ACTIVE_ACNE_BLOCK,
        ISOTRETINOIN_BLOCK,
        UNCONFIRMED_BLOCK,
        *SKIN_OF_COLOUR_BLOCKS,
        *PREGNANCY_BLOCKS,
        *UNCERTAIN_BLOCKS,
        KELOID_BLOCK,
        HERPES_ACTIVE_BLOCK,
    ),
    cards=(
        "active-acne",
        "isotretinoin-pregnancy",
        "isotretinoin-current",
        "isotretinoin-last-dose-unknown",
        "isotretinoin-recent",
        "isotretinoin-window-passed",
        "isotretinoin-unconfirmed",
        "skin-of-colour",
        "pregnancy-uncertain",
        "pregnancy",
        "keloid-history",
        "herpes-active",
        "herpes-history-antiviral",
        "herpes-history",
        "records-other-patient",
    ),
    sections=("isotretinoin-planned-end",),
)
