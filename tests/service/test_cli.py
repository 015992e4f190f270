"""`acne-scar-cds evaluate`: the reviewers' view of the same engine."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from service.cli import main
from tests.support.fhir import icepick_scar, isotretinoin_statement, patient


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "patient.json"
    entries = [{"resource": r} for r in (patient(), icepick_scar(), isotretinoin_statement())]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return path


def test_evaluate_prints_readable_cards(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(bundle), "--today", "2026-11-26"]) == 0
    out = capsys.readouterr().out
    assert "Patient/p1, as of 2026-11-26: 2 card(s)" in out
    assert "[WARNING] Isotretinoin last dose 2026-09-26" in out
    assert "- MedicationStatement/iso1: isotretinoin 20 MG Oral Capsule, completed, last dose 2026-09-26" in out
    assert "* suggestion: Draft order: Punch excision" in out


def test_evaluate_json_is_a_cds_hooks_response(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(bundle), "--today", "2026-11-26", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)["cards"]
    assert sorted(c["indicator"] for c in cards) == ["info", "warning"]


def test_the_date_decides(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ten months after the last dose, R3 is information, not a warning."""
    main(["evaluate", str(bundle), "--today", "2027-07-26"])
    assert "[INFO] Isotretinoin last dose 2026-09-26: the 6-month consensus wait has passed" in capsys.readouterr().out


def test_an_unreadable_date_is_said_in_the_cards_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GUIDELINE §1 (v2): an isotretinoin end date that cannot be read is an unknown last dose,
    and the card names the record and what could not be read; never an error, never silence."""
    broken = isotretinoin_statement()
    broken["effectivePeriod"]["end"] = "last autumn"
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": icepick_scar()}, {"resource": broken}],
            }
        )
    )
    assert main(["evaluate", str(path), "--today", "2026-11-26"]) == 0
    out = capsys.readouterr().out
    assert "[WARNING] Isotretinoin on record with no last dose date" in out
    assert "MedicationStatement/iso1" in out and "could not read effectivePeriod.end" in out


def test_console_script_is_installed(bundle: Path) -> None:
    exe = Path(sys.executable).parent / "acne-scar-cds"
    done = subprocess.run(
        [str(exe), "evaluate", str(bundle), "--today", "2026-11-26"], capture_output=True, text=True, check=True
    )
    assert "[INFO] Ice-pick acne scars" in done.stdout


def test_evaluate_shows_the_detail_as_text_not_markdown(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Card detail is Markdown (CDS Hooks §Card Attributes); a terminal shows words and lists."""
    main(["evaluate", str(bundle), "--today", "2026-11-26"])
    out = capsys.readouterr().out
    assert "**" not in out and "_Evidence" not in out
    assert "\n  Based on:\n  - MedicationStatement/iso1: isotretinoin" in out
    assert "\n  Evidence: " in out


def test_help_is_plain_text_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "`" not in out
    assert "acne-scar-cds evaluate fixtures/patients/isotretinoin-2-months.json --today 2026-11-26" in out


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"acne-scar-cds {version('acne-scar-cds')}"


def test_python_dash_m_service_is_the_same_command(bundle: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "evaluate", str(bundle), "--today", "2026-11-26"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "[WARNING] Isotretinoin last dose 2026-09-26" in done.stdout
