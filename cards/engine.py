"""The guideline engine: resources in, cards out. Load it once; evaluate per request.

engine = Engine.load()
cards = engine.evaluate_resources(patient_id, raw_resources, today)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from cards import answers, medications, order_rules, orders, plan, record, resources, rules
from cards.card_check import CardCheck
from cards.catalogue import Catalogue
from cards.errors import ContentError
from cards.findings import Finding
from cards.order_rules import ORDER_RULES, once_per_batch
from cards.orders import ProcedureReader, read_orders, with_unread
from cards.plan import PlanContent, treatment_plan
from cards.procedures import load_procedures
from cards.record import PatientRecord, build_record, foreign_records
from cards.render import RenderedCard, UuidFactory, by_severity, new_uuid, render
from cards.resources import RawResource, Selector, select_and_validate
from cards.rules import SAFETY_RULES, records_of_another_patient
from cards.terminology import CONTENT, Terminology
from cards.uses import PROCEDURE_SYSTEM, Uses, available, unmet

# What the rules read from the content, as each module declares it (checked by `Engine.load`).
USES: tuple[Uses, ...] = tuple(
    m.USES for m in (rules, plan, order_rules, record, medications, answers, orders, resources)
)

SCAR_TOPICS = frozenset({"acne-scar", "skin-scar-unspecified"})


@dataclass(frozen=True)
class Engine:
    """The loaded, validated content and the rules that read it."""

    terminology: Terminology
    catalogue: Catalogue
    plan_content: PlanContent
    reader: ProcedureReader
    selector: Selector
    card_check: CardCheck  # what each card sent is checked with (cards.card_check)

    @classmethod
    def load(cls, root: Path = CONTENT) -> Engine:
        """Load and check every content file under `root`, and that it holds everything the rules
        use (cards.uses); ContentError stops the boot, naming what is wrong or missing."""
        terminology = Terminology.load(root)
        catalogue = Catalogue.load(root)
        system = terminology.codesystems.get(PROCEDURE_SYSTEM)
        procedures = load_procedures(system) if system is not None else {}
        if missing := unmet(USES, available(catalogue, terminology, procedures)):
            raise ContentError(f"the content lacks what the rules use: {'; '.join(missing)}")
        for by_grade in (p["by_grade"] for p in catalogue.plans.values()):
            unknown = {c for codes in by_grade.values() for c in codes} - procedures.keys()
            if unknown or "unknown" not in by_grade:
                raise ContentError(f"plan names unknown procedures {unknown} or lacks 'unknown'")
        content = PlanContent(catalogue, procedures, terminology.codesystem_url(PROCEDURE_SYSTEM))
        # Every card and every draft checked in full here, so that each call checks only what
        # the chart put in (issue 18).
        card_check = CardCheck.compile(catalogue, procedures, content.procedure_system)
        return cls(
            terminology,
            catalogue,
            content,
            ProcedureReader.load(terminology, procedures, root / "procedure-text.yaml"),
            Selector(terminology),
            card_check,
        )

    def record(self, patient_id: str, resources: Iterable[RawResource], today: date) -> PatientRecord:
        """Select, read and derive the facts. Never raises for imperfect data: what could not
        be read is in the record, beside the facts (GUIDELINE §1, v2)."""
        selection = select_and_validate(resources, patient_id, self.selector)
        return build_record(patient_id, selection, self.terminology, today, self.reader)

    def findings(self, record: PatientRecord, today: date) -> list[Finding]:
        """What the rules conclude for one patient, before the catalogue words it (the review
        package reads the blocks): none without acne scarring (GUIDELINE §1)."""
        if record.scarring is None:
            # Silence (GUIDELINE §1), unless a record of another patient that came with the chart
            # is an acne scar: it may be this patient's, mislabelled, and the EHR team must hear.
            scar = any(u.foreign and u.topics & SCAR_TOPICS for u in record.unread)
            foreign = records_of_another_patient(record, today) if scar else None
            return [foreign] if foreign else []
        findings = [f for rule in SAFETY_RULES if (f := rule(record, today)) is not None]
        blocks = [b for f in findings for b in f.blocks]
        findings.append(treatment_plan(record, today, self.plan_content, blocks))
        return [_annotated(f, record) for f in findings]

    def evaluate(self, record: PatientRecord, today: date, make_uuid: UuidFactory = new_uuid) -> list[RenderedCard]:
        """The cards for one patient: none without acne scarring (GUIDELINE §1)."""
        return by_severity([render(f, self.catalogue, make_uuid) for f in self.findings(record, today)])

    def evaluate_orders(
        self,
        patient_id: str,
        resources: Sequence[RawResource],
        draft_orders: Sequence[RawResource],
        today: date,
        selected: Collection[str] | None = None,
    ) -> list[RenderedCard]:
        """The cards for draft orders (order-select: only the `selected` references; order-sign:
        all). Safe orders get none; a scar diagnosis is not needed to flag an unsafe order."""
        record = self.record(patient_id, resources, today)
        # A draft may point at a Medication sent alongside the patient's data or fetched.
        medications = [r for r in resources if r.data.get("resourceType") == "Medication"]
        drafts = select_and_validate([*draft_orders, *medications], patient_id, self.selector)
        record = replace(record, left_out={**record.left_out, **drafts.left_out})
        batch = with_unread(read_orders(drafts.models, self.reader, self.terminology), drafts.unread)
        targets = [o for o in batch if selected is None or o.reference in selected]
        findings = once_per_batch(
            [
                f
                for order in targets
                for rule in ORDER_RULES
                if (f := rule(record, order, batch, today, self.plan_content)) is not None
            ]
        )
        record = replace(record, foreign=record.foreign + foreign_records(drafts.unread))
        if foreign := records_of_another_patient(record, today):
            findings.append(foreign)
        return by_severity([render(_annotated(f, record), self.catalogue) for f in findings])

    def evaluate_resources(self, patient_id: str, resources: Sequence[RawResource], today: date) -> list[RenderedCard]:
        """`record` then `evaluate`."""
        return self.evaluate(self.record(patient_id, resources, today), today)


def _annotated(finding: Finding, record: PatientRecord) -> Finding:
    """The finding, its "Based on" lines saying what of each record could not be read."""
    return replace(finding, basis=tuple(record.annotated(e) for e in finding.basis))
