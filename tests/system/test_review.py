"""The review package (`acne-scar-cds review`, README "Going live safely"): a static site a clinical
committee reads from disk, prints and signs off. Rendered in a real browser (Debian's chromium,
headless, as tests/service/test_api_docs.py does), it must show every catalogue card with its evidence
links, and no link inside it may lead nowhere."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from cards.catalogue import Catalogue
from service.app import create_app
from service.cli import main
from service.governance import CORE, fingerprint
from service.review.changes import at_git_ref, snapshot_of
from service.review.html import markdown
from service.settings import CardsMode, Settings
from tests.support.paths import FIXTURES, ROOT, load_json
from tests.system.test_api_docs_browser import needs_chromium, open_in_chromium

CATALOGUE = Catalogue.load()
PAGES = ("index.html", "cards.html", "data-elements.html", "terminology.html", "fixtures.html", "spec.html")


class Links(HTMLParser):
    """The ids, links and fetched resources of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.fetched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))
        if values.get("src") or (tag == "link" and values.get("href")):  # what a page would load
            self.fetched.append(str(values.get("src") or values.get("href")))


def parsed(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def review(out: Path, *extra: str) -> int:
    return main(["review", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package for the module: built as a newcomer would, from the checkout's fixtures."""
    out = tmp_path_factory.mktemp("review") / "review"
    assert review(out) == 0
    return out


def card_sections(html: str) -> dict[str, str]:
    """cards.html, cut into one piece of markup per card section."""
    pieces = re.split(r'(?=<section class="review-card" id="card-)', html)
    return {
        re.match(r'<section class="review-card" id="card-([^"]+)"', p)[1]: p  # type: ignore[index]
        for p in pieces
        if p.startswith("<section")
    }


@needs_chromium
def test_a_reviewer_sees_every_card_with_its_evidence_and_no_link_leads_nowhere(package: Path, tmp_path: Path) -> None:
    doms = {page: open_in_chromium((package / page).as_uri(), tmp_path / page)[0] for page in PAGES}

    cards = card_sections(doms["cards.html"])
    assert set(cards) == set(CATALOGUE.cards), "every catalogue card, once"
    for cid, content in CATALOGUE.cards.items():
        assert f'class="ehr-card {content.indicator}"' in cards[cid], cid  # shown as the EHR shows it
        for evidence in content.evidence:
            assert f'class="evidence" href="{evidence.url}"' in cards[cid].replace("&amp;", "&"), (cid, evidence.key)
    assert "Sign-off:" in doms["index.html"] and fingerprint()[0] in doms["index.html"]

    pages = {page: parsed(dom) for page, dom in doms.items()}
    broken = []
    for page, links in pages.items():
        assert links.fetched == [], f"{page} loads {links.fetched}: the package must open from disk alone"
        for href in links.hrefs:
            target = urlsplit(href)
            if target.scheme in ("http", "https"):
                continue  # evidence, outside the package by design
            file = target.path or page
            if file not in pages or (target.fragment and target.fragment not in pages[file].ids):
                broken.append(f"{page}: {href}")
    assert broken == []


def test_the_package_says_what_it_cannot_show_and_why(package: Path) -> None:
    """A card no example patient triggers is shown from the catalogue and flagged; the withholds
    are the blocks its rule raised, in the catalogue's words."""
    cards = card_sections((package / "cards.html").read_text(encoding="utf-8"))
    assert "no example patient triggers this card" in cards["order-unreadable"]
    recent = cards["isotretinoin-recent"]
    assert (
        "Isotretinoin last dose 2026-09-26: defer fully ablative laser and mechanical dermabrasion until "
        "2027-03-26" in recent
    )
    assert "isotretinoin within the last 6 months, or last dose unknown (R3)" in recent
    assert "Laser punch-out" in recent and 'href="fixtures.html#fixture-patients-isotretinoin-2-months"' in recent
    pregnancy = cards["isotretinoin-pregnancy"]
    assert "R3-isotretinoin" in pregnancy and "R5-pregnancy" in pregnancy and "every retinoid" in pregnancy
    order = cards["order-retinoid-pregnancy"]
    assert "Remove the draft order" in order and 'href="fixtures.html#fixture-orders-retinoid-pregnant"' in order
    index = (package / "index.html").read_text(encoding="utf-8")
    assert re.search(r"\d+ cards?</span> no example patient triggers", index)
    assert "unverified" in (package / "data-elements.html").read_text(encoding="utf-8")


def test_card_markdown_is_html_and_anything_else_is_text() -> None:
    html = markdown("**Based on:**\n- <script>alert(1)</script>\n\n[x](javascript:alert(1)) [AAD](https://x.org/a)")
    assert "<strong>Based on:</strong>" in html and "<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>" in html
    assert 'href="javascript' not in html and '<a href="https://x.org/a">AAD</a>' in html


def test_every_value_set_is_in_the_data_element_table() -> None:
    """A new value set cannot go unreviewed, and the table names none that does not exist."""
    rows = yaml.safe_load((CORE / "content" / "data-elements.yaml").read_text(encoding="utf-8"))
    named = {v for row in rows for v in row.get("valuesets", [])}
    assert named == {p.stem for p in (CORE / "content" / "valuesets").glob("*.json")}
    assert {r for row in rows for r in row["rules"]} >= {f"R{n}" for n in range(1, 9)}


def test_a_sign_off_is_shown_on_the_next_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signed = tmp_path / "review.yaml"
    signed.write_text(
        yaml.safe_dump(
            {
                "reviewer": "Dr A. Reviewer",
                "date": "2026-12-03",
                "decision": "approved",
                "content_version": "2",
                "fingerprint": fingerprint()[0],
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("CONTENT_REVIEW_FILE", str(signed))
    assert review(tmp_path / "out") == 0
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert '<span class="flag good">signed off</span>' in index and "Dr A. Reviewer" in index
    signed.write_text(
        signed.read_text(encoding="utf-8").replace(fingerprint()[0], "sha256:" + "1" * 64), encoding="utf-8"
    )
    assert review(tmp_path / "out") == 0
    assert "outdated: the approval on file is for other content" in (tmp_path / "out" / "index.html").read_text(
        encoding="utf-8"
    )


def older(manifest: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of content a little older than this: one card worded otherwise, one code
    fewer, another trigger, another outcome for one fixture."""
    old: dict[str, Any] = json.loads(json.dumps(manifest))
    card = old["cards"]["isotretinoin-recent"]
    card["summary"] = card["summary"].replace("defer fully ablative laser", "defer laser")
    old["cards"]["keloid-history"]["fires_when"] = "keloid Condition, active only"
    del old["valuesets"]["isotretinoin"]["http://www.nlm.nih.gov/research/umls/rxnorm|2262711"]
    old["fixtures"]["patients/keloid-history"] = ["treatment-plan-ice-pick"]
    old["fingerprint"] = "sha256:" + "2" * 64
    return old


def test_changes_since_a_previous_package_name_texts_rules_codes_and_outcomes(package: Path, tmp_path: Path) -> None:
    previous = tmp_path / "review-old"
    previous.mkdir()
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    (previous / "manifest.json").write_text(json.dumps(older(manifest)), encoding="utf-8")

    assert review(tmp_path / "new", "--since", str(previous)) == 0
    changes = (tmp_path / "new" / "changes.html").read_text(encoding="utf-8")
    assert "card isotretinoin-recent: summary" in changes
    assert "defer<ins> fully ablative</ins> laser" in changes  # the words that changed
    assert "card keloid-history: fires_when" in changes and "keloid Condition, active only" in changes
    assert "value set isotretinoin" in changes and "code added" in changes and "rxnorm|2262711" in changes
    assert "fixture patients/keloid-history" in changes and "keloid-history, treatment-plan-ice-pick" in changes
    assert 'href="changes.html"' in (tmp_path / "new" / "index.html").read_text(encoding="utf-8")


def test_the_same_content_has_no_changes(package: Path, tmp_path: Path) -> None:
    assert review(tmp_path / "again", "--since", str(package)) == 0
    changes = (tmp_path / "again" / "changes.html").read_text(encoding="utf-8")
    assert '<span class="flag good">the same content</span>' in changes
    assert "No card text changed." in changes and "Every example patient gets the same cards." in changes


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_changes_since_a_git_ref_read_the_content_at_that_ref(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    shutil.copytree(CORE, repository / "cards", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    catalogue = repository / "cards" / "content" / "catalogue.yaml"
    catalogue.write_text(
        catalogue.read_text(encoding="utf-8").replace("several sessions", "some sessions", 1), encoding="utf-8"
    )

    then, now = at_git_ref("HEAD", repository), snapshot_of(repository / "cards")
    assert then["fingerprint"] == fingerprint()[0] != now["fingerprint"]
    assert then["cards"]["treatment-plan-ice-pick"]["detail"] != now["cards"]["treatment-plan-ice-pick"]["detail"]
    assert then["fixtures"] is None  # a ref's rules are not run


def test_since_names_a_git_ref_of_the_checkout_or_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if (ROOT / ".git").exists():
        assert review(tmp_path / "a", "--since", "HEAD") == 0
        assert "What changed since git HEAD" in (tmp_path / "a" / "changes.html").read_text(encoding="utf-8")
    assert review(tmp_path / "b", "--since", "no-such-ref-anywhere") == 2
    assert "'no-such-ref-anywhere' is neither a review package folder nor a git ref" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert review(tmp_path / "c", "--since", str(tmp_path / "empty")) == 2
    assert "has no manifest.json: it is not a review package" in capsys.readouterr().err


@pytest.fixture
def pilot_database(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A database file after a short pilot: patient-view live with feedback, order-sign silent."""
    url = f"sqlite:///{tmp_path}/pilot.sqlite3"
    app = create_app(
        dataclasses.replace(
            settings, database_url=url, cards_mode=CardsMode("live", (("acne-scar-order-sign", "silent"),))
        )
    )
    client = app.test_client()
    cards = client.post(
        "/cds-services/acne-scar-treatment", json=load_json(FIXTURES / "requests" / "isotretinoin-2-months.json")
    ).get_json()["cards"]
    warning = next(c for c in cards if c["indicator"] == "warning")
    item = {
        "card": warning["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-26T10:00:00Z",
        "overrideReason": {"reason": warning["overrideReasons"][1]},
    }
    assert client.post("/cds-services/acne-scar-treatment/feedback", json={"feedback": [item]}).status_code == 200
    client.post(
        "/cds-services/acne-scar-order-sign", json=load_json(FIXTURES / "orders" / "ablative-after-isotretinoin.json")
    )
    yield url


@needs_chromium
def test_the_package_carries_the_dashboard_of_a_database(pilot_database: str, tmp_path: Path) -> None:
    out = tmp_path / "review"
    assert review(out, "--database", pilot_database) == 0
    dom, _ = open_in_chromium((out / "feedback.html").as_uri(), tmp_path / "browser")
    assert "<h1>Feedback dashboard</h1>" in dom and 'href="index.html"' in dom  # inside the package
    assert "isotretinoin-recent (live)</text>" in dom and "order-isotretinoin-recent (silent)</text>" in dom
    assert "The patient's record is incorrect or out of date</text>" in dom
    assert 'href="feedback.html"' in (out / "index.html").read_text(encoding="utf-8")
    assert review(out) == 0 and not (out / "feedback.html").exists()  # no stale page left behind


def test_review_runs_as_the_readme_prints_it(tmp_path: Path) -> None:
    """From a fresh clone's folder, with the console script."""
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "acne-scar-cds"), "review", "--out", str(tmp_path / "r")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    fixtures = len(list(FIXTURES.glob("patients/*.json"))) + len(list(FIXTURES.glob("orders/*.json")))
    assert f"{len(CATALOGUE.cards)} cards, {fixtures} example patients" in done.stdout
    assert (tmp_path / "r" / "index.html").is_file() and date.today().isoformat() in (
        tmp_path / "r" / "index.html"
    ).read_text(encoding="utf-8")
