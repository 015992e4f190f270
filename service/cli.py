"""`acne-scar-cds`: the reviewers' command line (also `python -m service`).

    acne-scar-cds evaluate fixtures/patients/isotretinoin-2-months.json --today 2026-11-26
    acne-scar-cds evaluate BUNDLE.json --json      # the CDS Hooks response
    acne-scar-cds feedback-report [--service ID] [--json]
    acne-scar-cds migrate                          # apply database migrations (DATABASE_URL)
    acne-scar-cds review --out review/             # the review package for the clinical committee

It runs the same engine as the service, on a FHIR Bundle (or a single resource) from a file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Sequence
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from cards.engine import Engine
from cards.errors import CardsError
from cards.render import RenderedCard
from cards.resources import RawResource
from service.settings import Settings, SettingsError
from service.store import Store

MARK = {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"}
DESCRIPTION = (
    "Ice-pick acne scar guidance without the server: the cards a patient's FHIR data gets, "
    "what clinicians did with them, the database schema, and the review package."
)
EXAMPLES = """examples:
  acne-scar-cds evaluate fixtures/patients/isotretinoin-2-months.json --today 2026-11-26
  acne-scar-cds evaluate BUNDLE.json --json      the CDS Hooks response
  acne-scar-cds feedback-report --service acne-scar-treatment
  acne-scar-cds migrate                          apply database migrations to DATABASE_URL
  acne-scar-cds review --out review/             the review package (a static site) for the committee"""
# CDS Hooks card detail is GitHub-flavoured Markdown (§Card Attributes); the catalogue's text uses
# bold, emphasis, links and "- " lists. A terminal shows the words, the lists and the link targets.
MARKDOWN_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"\1"),
    (re.compile(r"(?<![\w*])([*_])(\S(?:.*?\S)?)\1(?![\w*])"), r"\2"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r"\1 (\2)"),
]


def main(argv: Sequence[str] | None = None, prog: str = "acne-scar-cds") -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('acne-scar-cds')}")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="print the cards a patient would get")
    evaluate.add_argument("bundle", type=Path, help="a FHIR R4 Bundle (JSON) of one patient's data")
    evaluate.add_argument(
        "--today",
        type=date.fromisoformat,
        default=date.today(),
        help="evaluate as of this date (YYYY-MM-DD); default: today",
    )
    evaluate.add_argument("--json", action="store_true", help="print the CDS Hooks response as JSON")
    report = commands.add_parser("feedback-report", help="acceptance of each card and suggestion")
    report.add_argument("--service", help="only this service id")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    commands.add_parser("migrate", help="apply database migrations to DATABASE_URL")
    # Imported here: the review package's builder reads fixtures with this module's readers.
    from service.review import command as review

    review.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "review":
        return review.run(args)
    if args.command != "evaluate":
        return _database_command(args)
    try:
        resources = read_resources(args.bundle)
        patient_id = find_patient_id(resources)
        cards = Engine.load().evaluate_resources(patient_id, resources, args.today)
    except (OSError, ValueError, CardsError) as exc:
        print(f"acne-scar-cds: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"cards": [c.card for c in cards]}, indent=2))
    else:
        print(format_cards(cards, patient_id, args.today))
    return 0


def _database_command(args: argparse.Namespace) -> int:
    """`migrate` brings the schema up to date; `feedback-report` only reads (the service, or
    `migrate`, made the schema)."""
    try:
        database_url = Settings.from_env().database_url
        store = Store.from_url(database_url)
        if args.command == "migrate":
            store.migrate()
            url = make_url(database_url).render_as_string(hide_password=True)
            print(f"database {url} is at the latest schema")
            return 0
        report = store.report(args.service)
    except SettingsError as exc:
        print(f"acne-scar-cds: database: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        hint = " (a new database? `acne-scar-cds migrate` creates its tables)" if args.command != "migrate" else ""
        print(f"acne-scar-cds: database: {str(exc).splitlines()[0]}{hint}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def format_report(report: dict[str, Any]) -> str:
    """The feedback report as two terminal tables."""
    lines = [f"{'card':34} {'issued':>7} {'accepted':>9} {'overridden':>11} {'rate':>6}  top override reasons"]
    for c in report["cards"]:
        rate = "-" if c["acceptance_rate"] is None else f"{c['acceptance_rate']:.0%}"
        reasons = ", ".join(f"{r['code']} ({r['count']})" for r in c["top_override_reasons"])
        lines.append(f"{c['card']:34} {c['issued']:>7} {c['accepted']:>9} {c['overridden']:>11} {rate:>6}  {reasons}")
    lines += ["", f"{'suggestion':34} {'card':30} {'offered':>8} {'taken':>6}"]
    for s in report["suggestions"]:
        lines.append(f"{s['suggestion']:34} {s['card']:30} {s['offered']:>8} {s['accepted']:>6}")
    # Silent and live (CARDS_MODE): how often each card fires, per 100 hook calls of its service.
    calls = ", ".join(f"{c['service']} {c['mode']} {c['calls']}" for c in report["calls"]) or "none"
    lines += ["", f"hook calls: {calls}", f"{'card':34} {'mode':7} {'issued':>7} {'per 100 calls':>14}"]
    for f in report["firing"]:
        per_100 = "-" if f["per_100_calls"] is None else f"{f['per_100_calls']:g}"
        lines.append(f"{f['card']:34} {f['mode']:7} {f['issued']:>7} {per_100:>14}")
    return "\n".join(lines)


def read_resources(path: Path) -> list[RawResource]:
    """The resources of a Bundle file (or the one resource the file holds)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a FHIR resource")
    if data.get("resourceType") != "Bundle":
        return [RawResource(data, str(path))]
    entries = [e.get("resource") for e in data.get("entry", []) if isinstance(e, dict)]
    return [RawResource(r, str(path)) for r in entries if isinstance(r, dict)]


def find_patient_id(resources: list[RawResource]) -> str:
    """The id of the Bundle's Patient, else of the first subject referenced."""
    for raw in resources:
        if raw.data.get("resourceType") == "Patient" and raw.data.get("id"):
            return str(raw.data["id"])
    for raw in resources:
        reference = (raw.data.get("subject") or {}).get("reference", "")
        if reference.startswith("Patient/"):
            return str(reference.split("/", 1)[1])
    raise ValueError("no Patient in the bundle, and no resource names one as its subject")


def format_cards(cards: list[RenderedCard], patient_id: str, today: date) -> str:
    """The cards as a clinician would read them, in a terminal."""
    head = f"Patient/{patient_id}, as of {today.isoformat()}: {len(cards)} card(s)"
    if not cards:
        return head + " (no acne scarring on record: the service stays silent)"
    return "\n\n".join([head] + [_card_text(c.card, c.card_id) for c in cards])


def _card_text(card: dict[str, Any], card_id: str) -> str:
    lines = [f"[{MARK[card['indicator']]}] {card['summary']}", f"  card: {card_id}"]
    for line in map(plain_text, card.get("detail", "").splitlines()):
        hanging = "    " if line.startswith("- ") else "  "
        lines += textwrap.wrap(line, 96, initial_indent="  ", subsequent_indent=hanging, break_on_hyphens=False) or [""]
    lines.append("")
    for suggestion in card.get("suggestions", []):
        star = "*" if suggestion.get("isRecommended") else "-"
        lines.append(f"  {star} suggestion: {suggestion['label']}")
    for link in card.get("links", []):
        lines.append(f"  > {link['label']}: {link['url']}")
    return "\n".join(lines).rstrip()


def plain_text(markdown: str) -> str:
    """One line of card Markdown as a terminal shows it: no emphasis markers, links as
    "text (url)"; list markers and everything else stay."""
    for pattern, replacement in MARKDOWN_INLINE:
        markdown = pattern.sub(replacement, markdown)
    return markdown


if __name__ == "__main__":
    sys.exit(main())
