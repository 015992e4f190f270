"""`acne-scar-cds review`: write the review package, a static site that opens from disk.

acne-scar-cds review --out review/
acne-scar-cds review --out review/ --since review-old/        # or a git ref: --since v0.1.0
acne-scar-cds review --out review/ --database sqlite:///pilot.sqlite3
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cards.engine import Engine
from cards.errors import CardsError
from service.dashboard import dashboard_page
from service.governance import CORE, SHORT, content_review
from service.review.build import FIXTURE_TODAY, FIXTURES, Package, gather, system_label
from service.review.changes import PreviousUnavailable, compare, previous
from service.review.html import render_page, slug
from service.settings import Settings, SettingsError
from service.store import Store

PAGES = (
    "index.html",
    "cards.html",
    "data-elements.html",
    "terminology.html",
    "fixtures.html",
    "spec.html",
    "changes.html",
    "feedback.html",
    "manifest.json",
)
HEADING = re.compile(r"^#{2,3} (.+)$", re.MULTILINE)


def add_parser(commands: Any) -> None:
    """The `review` subcommand of the CLI."""
    review = commands.add_parser(
        "review",
        help="write the review package for the clinical committee",
        description="Write the review package: a static site (opens from disk, prints) "
        "with every card, its rule, evidence, fixtures and withholds, the data "
        "elements, the terminology, the fingerprint and the sign-off.",
    )
    review.add_argument("--out", type=Path, default=Path("review"), help="the folder to write (default: review)")
    review.add_argument("--since", help="a previous package folder, or a git ref (v0.1.0, main~3): what changed")
    review.add_argument("--database", help="a database URL for the feedback dashboard, e.g. sqlite:///pilot.sqlite3")
    review.add_argument("--fixtures", type=Path, default=FIXTURES, help="the fixtures folder (default: the checkout's)")
    review.add_argument(
        "--today",
        type=date.fromisoformat,
        default=FIXTURE_TODAY,
        help=f"evaluate the fixtures as of this date (default: {FIXTURE_TODAY}, their date)",
    )


def run(args: argparse.Namespace) -> int:
    """Build and write the package; 2 with one line on stderr when it cannot."""
    try:
        package, report = build(args)
        written = write(package, args.out, report)
    except (CardsError, SettingsError, PreviousUnavailable, SQLAlchemyError, OSError) as exc:
        print(f"acne-scar-cds: review: {exc}", file=sys.stderr)
        return 2
    changes = f"; {package.changes.count} changes since {package.since}" if package.changes else ""
    print(
        f"wrote {len(written)} files to {args.out}/: {len(package.cards)} cards, {len(package.runs)} example "
        f"patients ({len(package.untriggered)} cards none triggers), content v{package.review.version} "
        f"{package.review.fingerprint[:SHORT]}, sign-off {package.review.status}{changes}. "
        f"Open {args.out / 'index.html'}"
    )
    return 0


def build(args: argparse.Namespace) -> tuple[Package, dict[str, Any] | None]:
    """The package's content, what changed since `--since`, and the feedback report of `--database`."""
    engine = Engine.load()
    review = content_review(Settings.from_env(), engine.catalogue.guideline_version)
    since = previous(args.since, CORE.parent) if args.since else None  # before --out may overwrite it
    package = gather(engine, review, args.fixtures, args.today)
    if since is not None:
        snapshot, label = since
        package = replace(package, changes=compare(snapshot, package.snapshot, label), since=label)
    report = None
    if args.database:
        store = Store.from_url(args.database)
        store.migrate()
        report = store.report()
    return package, report


def navigation(package: Package, feedback: bool) -> list[tuple[str, str]]:
    nav = [
        ("index.html", "Overview"),
        ("cards.html", "Cards"),
        ("data-elements.html", "Data elements"),
        ("terminology.html", "Terminology"),
        ("fixtures.html", "Example patients"),
    ]
    nav += [("spec.html", "Specification")] if package.specification else []
    nav += [("changes.html", "Changes")] if package.changes else []
    return nav + ([("feedback.html", "Feedback")] if feedback else [])


def write(package: Package, out: Path, report: dict[str, Any] | None) -> list[str]:
    """Every page of the package into `out` (pages of an earlier build that this one has not are
    removed, so no stale page is left to be read)."""
    out.mkdir(parents=True, exist_ok=True)
    nav = navigation(package, report is not None)
    common = {
        "p": package,
        "nav": nav,
        "stamp": _stamp(package),
        "built": date.today().isoformat(),
        "today_iso": date.today().isoformat(),
        "feedback": report is not None,
    }
    pages = {
        name: render_page(name, page=name, **common, **_extra(name, package))
        for name, _ in nav
        if name != "feedback.html"
    }
    if report is not None:
        pages["feedback.html"] = dashboard_page(
            report, package.engine.catalogue, "the database given", nav=nav, page="feedback.html", stamp=common["stamp"]
        )
    pages["manifest.json"] = json.dumps(package.snapshot, indent=1, sort_keys=True) + "\n"
    for name in PAGES:
        if name not in pages and (out / name).is_file():
            (out / name).unlink()
    for name, text in pages.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(pages)


def _stamp(package: Package) -> str:
    review = package.review
    return f"guideline v{review.version} · {review.fingerprint[:SHORT]} · sign-off: {review.status}"


def _extra(page: str, package: Package) -> dict[str, Any]:
    """What one page needs besides the package."""
    headings = HEADING.findall(package.specification or "")
    titles = {slug(h.replace("`", "")): h.replace("`", "") for h in headings}
    if page == "index.html":
        unverified = [c for vs in package.valuesets.values() for c in vs.unverified]
        kinds = Counter(c.content.indicator for c in package.cards)
        return {
            "unverified": unverified,
            "failed": [r for r in package.runs if r.error],
            "indicators": [(k, kinds[k]) for k in ("critical", "warning", "info") if kinds[k]],
        }
    if page == "cards.html":
        return {"groups": _groups(package), "section_titles": titles}
    if page == "data-elements.html":
        return {
            "fact_sections": {
                e["fact"]: slug(h.replace("`", "")) for e in package.elements for h in headings if f"`{e['fact']}`" in h
            }
        }
    if page == "terminology.html":
        return {"system_label": system_label}
    return {}


def _groups(package: Package) -> Sequence[tuple[str, list[Any]]]:
    patient = [c for c in package.cards if not c.id.startswith("order-")]
    orders = [c for c in package.cards if c.id.startswith("order-")]
    return [("Patient view", patient), ("Order checks", orders)]
