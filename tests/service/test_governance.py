"""The content's sign-off (README "Going live safely"): the fingerprint names the content exactly,
the sign-off file says who approved which, and the service reports it in discovery and /readyz."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from service.app import create_app
from service.governance import CORE, REVIEW_FILE, core_files, fingerprint, load_signoff
from service.settings import CardsMode, Settings, SettingsError
from tests.service.test_contract import errors_of, response_validator

SPEC = yaml.safe_load((CORE.parent / "service" / "openapi.yaml").read_text(encoding="utf-8"))


def signed(tmp_path: Path, **fields: Any) -> Path:
    """A sign-off file approving the running content, with `fields` changed."""
    digest, _ = fingerprint()
    values = {
        "reviewer": "Dr A. Reviewer, consultant dermatologist",
        "date": "2026-12-03",
        "decision": "approved",
        "content_version": "2",
        "fingerprint": digest,
        **fields,
    }
    path = tmp_path / "review.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def app_with(settings: Settings, review: Path | None, **changes: Any) -> Flask:
    return create_app(dataclasses.replace(settings, content_review_file=str(review) if review else None, **changes))


def test_the_shipped_content_is_pending_and_the_service_says_so(client: Any) -> None:
    ready = client.get("/readyz")
    assert errors_of(response_validator(SPEC, "/readyz", "get", 200), ready.get_json()) == []
    content = ready.get_json()["content"]
    assert (content["version"], content["status"], content["signed_off"]) == ("2", "pending", False)
    assert content["fingerprint"] == fingerprint()[0] and content["review"] == {"decision": "pending"}
    assert ready.get_json()["cards_mode"] == dict.fromkeys(
        ["acne-scar-treatment", "acne-scar-order-select", "acne-scar-order-sign"], "live"
    )
    for service in client.get("/cds-services").get_json()["services"]:
        assert service["usageRequirements"] == (
            "Clinical content: guideline v2, not signed off (review decision: pending)."
        )


def test_an_approval_of_this_content_makes_it_signed_off(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="acne_scar_cds")
    client = app_with(settings, signed(tmp_path), cards_mode=CardsMode("silent")).test_client()
    content = client.get("/readyz").get_json()["content"]
    assert (content["status"], content["signed_off"]) == ("signed-off", True)
    assert content["review"] == {
        "decision": "approved",
        "reviewer": "Dr A. Reviewer, consultant dermatologist",
        "content_version": "2",
        "fingerprint": fingerprint()[0],
        "date": "2026-12-03",
    }
    assert errors_of(response_validator(SPEC, "/readyz", "get", 200), client.get("/readyz").get_json()) == []
    usage = client.get("/cds-services").get_json()["services"][0]["usageRequirements"]
    assert usage == (
        f"Clinical content: guideline v2, signed off by Dr A. Reviewer, consultant dermatologist "
        f"on 2026-12-03 (fingerprint {fingerprint()[0][:19]})."
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == "acne_scar_cds"]
    assert not any("not signed off" in w for w in warnings)
    assert any(
        w.startswith("CARDS_MODE: acne-scar-treatment, acne-scar-order-select, acne-scar-order-sign silent")
        for w in warnings
    )


@pytest.mark.parametrize("change", [{"fingerprint": "sha256:" + "0" * 64}, {"content_version": "1"}])
def test_an_approval_of_other_content_is_outdated(settings: Settings, tmp_path: Path, change: dict[str, str]) -> None:
    client = app_with(settings, signed(tmp_path, **change)).test_client()
    content = client.get("/readyz").get_json()["content"]
    assert (content["status"], content["signed_off"]) == ("outdated", False)
    assert client.get("/cds-services").get_json()["services"][0]["usageRequirements"] == (
        "Clinical content: guideline v2, not signed off: the sign-off on file (Dr A. Reviewer, consultant "
        "dermatologist on 2026-12-03) is for other content."
    )


def test_unsigned_live_content_is_a_warning_at_start(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="acne_scar_cds")
    create_app(settings)
    (warning,) = [r.getMessage() for r in caplog.records if "not signed off" in r.getMessage()]
    assert f"Running fingerprint {fingerprint()[0][:19]}; sign-off file {REVIEW_FILE}" in warning


@pytest.mark.parametrize(
    "content, message",
    [
        ("decision: approved\n", "needs reviewer, date, content_version, fingerprint"),
        ("decision: yes\n", "decision"),
        ("decision: rejected\nreviewer: Dr B\n", "needs date"),
        ("decision: approved\nreviewer: Dr B\ndate: 2026-12-03\ncontent_version: 2\nfingerprint: abc\n", "fingerprint"),
        ("- a list\n", "not a mapping"),
    ],
)
def test_a_sign_off_file_that_cannot_be_read_stops_the_start(
    settings: Settings, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "review.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match=message) as raised:
        app_with(settings, path)
    assert str(path) in str(raised.value)


def test_the_shipped_sign_off_file_is_pending() -> None:
    assert load_signoff(REVIEW_FILE).decision == "pending"


def copy_of_the_core(tmp_path: Path) -> Path:
    core = tmp_path / "cards"
    shutil.copytree(CORE, core, ignore=shutil.ignore_patterns("__pycache__"))
    return core


def test_the_fingerprint_changes_with_any_word_code_or_rule_but_not_with_the_sign_off(tmp_path: Path) -> None:
    core = copy_of_the_core(tmp_path)
    assert fingerprint(core)[0] == fingerprint()[0]
    before = fingerprint(core)[0]
    (core / "content" / "review.yaml").write_text("decision: pending\nnotes: read twice\n", encoding="utf-8")
    assert fingerprint(core)[0] == before
    for path, old, new in [
        ("content/catalogue.yaml", "several sessions", "some sessions"),
        ("content/valuesets/isotretinoin.json", '"6064"', '"6065"'),
        ("rules.py", "skin.value < 4", "skin.value < 5"),
    ]:
        text = (core / path).read_text(encoding="utf-8")
        assert old in text, path
        (core / path).write_text(text.replace(old, new, 1), encoding="utf-8")
        assert fingerprint(core)[0] != before, path
        before = fingerprint(core)[0]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="no sha256sum")
def test_an_auditor_can_recompute_the_fingerprint_with_sha256sum() -> None:
    """README: the sha256 of what `sha256sum` prints for the files, sorted by path, under cards/."""
    paths = [p.relative_to(CORE).as_posix() for p in core_files()]
    listing = subprocess.run(["sha256sum", "--", *paths], cwd=CORE, capture_output=True, check=True).stdout
    assert fingerprint()[0] == "sha256:" + hashlib.sha256(listing).hexdigest()
