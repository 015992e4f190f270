"""Clinical governance: which content is running, whether a reviewer signed it off, and which
services only pilot it silently (README "Going live safely").

The **fingerprint** names the content exactly: the sha256 of a `sha256sum`-style listing of the
clinical core's files (`cards/content/**` but the sign-off file itself, and the rules' code,
`cards/**/*.py`), so any change to a card's words, a code in a value set or a rule gives another
fingerprint. The **sign-off** is a small YAML file a reviewer fills in (`cards/content/review.yaml`,
or CONTENT_REVIEW_FILE): who, when, which decision, for which version and fingerprint (the review
package, `acne-scar-cds review`, prints both on its first page). The running content is signed
off when the decision is `approved` for this version and this fingerprint; the service says so in
discovery (`usageRequirements`) and in `/readyz`, and logs a warning at start when it is not.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

import cards
from service.registry import Registry, default_registry
from service.settings import CardsMode, Settings, SettingsError

log = logging.getLogger("acne_scar_cds")
CORE = Path(cards.__file__).resolve().parent
REVIEW_FILE = CORE / "content" / "review.yaml"  # CONTENT_REVIEW_FILE may name another
DECISIONS = ("pending", "approved", "changes-requested", "rejected")
FINGERPRINT = r"^sha256:[0-9a-f]{64}$"
SHORT = len("sha256:") + 12  # enough to tell two versions apart on a screen


class SignOffSchema(Schema):
    """review.yaml: empty fields until a reviewer decides; a decision names who and when, an
    approval also what (the version and fingerprint the review package printed)."""

    reviewer = fields.String(load_default=None, allow_none=True)
    date = fields.Date(load_default=None, allow_none=True)
    decision = fields.String(load_default="pending", validate=validate.OneOf(DECISIONS))
    content_version = fields.String(load_default=None, allow_none=True)
    fingerprint = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(FINGERPRINT))
    notes = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _decisions_are_signed(self, data: dict[str, Any], **_: Any) -> None:
        if data["decision"] == "pending":
            return
        needed = ["reviewer", "date"] + (["content_version", "fingerprint"] if data["decision"] == "approved" else [])
        if missing := [name for name in needed if not data[name]]:
            raise ValidationError(f"a {data['decision']!r} decision needs {', '.join(missing)}")


@dataclass(frozen=True)
class SignOff:
    """What the reviewer wrote in review.yaml."""

    decision: str = "pending"
    reviewer: str | None = None
    date: date | None = None
    content_version: str | None = None
    fingerprint: str | None = None
    notes: str | None = None

    def details(self) -> dict[str, str]:
        """The fields that are filled in (JSON rule of this service: omit, never null)."""
        values = {
            "decision": self.decision,
            "reviewer": self.reviewer,
            "content_version": self.content_version,
            "fingerprint": self.fingerprint,
            "date": self.date.isoformat() if self.date else None,
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class ContentReview:
    """The running content (version, fingerprint, the files it covers) and its sign-off."""

    version: str
    fingerprint: str
    files: tuple[tuple[str, str], ...]  # (path under cards/, sha256)
    signoff: SignOff
    source: str

    @property
    def status(self) -> str:
        """`signed-off`; `outdated` (approved, but for other content); else the decision."""
        if self.signoff.decision != "approved":
            return self.signoff.decision
        same = (self.signoff.fingerprint, self.signoff.content_version) == (self.fingerprint, self.version)
        return "signed-off" if same else "outdated"

    @property
    def signed_off(self) -> bool:
        return self.status == "signed-off"

    def details(self) -> dict[str, Any]:
        """For /readyz: what runs, and whether it is what the reviewer signed off."""
        return {
            "version": self.version,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "signed_off": self.signed_off,
            "review": self.signoff.details(),
        }

    def statement(self) -> str:
        """One sentence for discovery's usageRequirements (CDS Hooks §Discovery: human-readable).
        The fingerprint only once signed off: until then the sentence is the same for any
        content of this version (the contract's discovery example is the real answer)."""
        head = f"Clinical content: guideline v{self.version}"
        who = f"{self.signoff.reviewer} on {self.signoff.date}"
        if self.status == "signed-off":
            return f"{head}, signed off by {who} (fingerprint {self.fingerprint[:SHORT]})."
        if self.status == "outdated":
            return f"{head}, not signed off: the sign-off on file ({who}) is for other content."
        return f"{head}, not signed off (review decision: {self.signoff.decision})."


def core_files(core: Path = CORE) -> list[Path]:
    """The files the fingerprint covers: the content (but the sign-off) and the rules' code."""
    content = [
        p
        for p in (core / "content").rglob("*")
        if p.is_file() and p.relative_to(core).as_posix() != "content/review.yaml"
    ]
    code = [p for p in core.rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(set(content + code), key=lambda p: p.relative_to(core).as_posix())


def fingerprint(core: Path = CORE) -> tuple[str, tuple[tuple[str, str], ...]]:
    """sha256 of the listing "<sha256>  <path>\\n" of `core_files` (what `sha256sum` prints), and
    the listing itself."""
    listing = tuple(
        (p.relative_to(core).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in core_files(core)
    )
    text = "".join(f"{digest}  {path}\n" for path, digest in listing)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest(), listing


def review_file(settings: Settings) -> Path:
    return Path(settings.content_review_file) if settings.content_review_file else REVIEW_FILE


def load_signoff(path: Path) -> SignOff:
    """The sign-off in `path`; SettingsError (naming the file) when it cannot be read."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValidationError("not a mapping of reviewer, date, decision, content_version, fingerprint, notes")
        # YAML reads 2026-12-03 as a date and 2 as a number; the schema reads text.
        data = SignOffSchema().load({k: _text(v) for k, v in raw.items()})
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"the content sign-off file {path} cannot be read: {exc}") from None
    except ValidationError as exc:
        raise SettingsError(f"the content sign-off file {path} is invalid: {exc.messages}") from None
    return SignOff(**data)


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else str(value) if isinstance(value, int | float) else value


def content_review(settings: Settings, version: str, core: Path = CORE) -> ContentReview:
    """The running content and its sign-off."""
    path = review_file(settings)
    digest, files = fingerprint(core)
    return ContentReview(version, digest, files, load_signoff(path), str(path))


def with_usage_requirements(registry: Registry, review: ContentReview) -> Registry:
    """Every service's discovery entry says which content it runs and whether it is signed off."""
    return Registry({sid: replace(s, usage_requirements=review.statement()) for sid, s in registry.services.items()})


def check_cards_mode(mode: CardsMode, registry: Registry) -> None:
    """A misspelt service id in CARDS_MODE would leave that service live: refuse to start."""
    if unknown := [sid for sid, _ in mode.services if sid not in registry.services]:
        raise SettingsError(
            f"CARDS_MODE names no service {', '.join(map(repr, unknown))}; "
            f"the services are {', '.join(registry.services)}"
        )


def check_governance(settings: Settings) -> None:
    """What the gunicorn master checks before workers start: CARDS_MODE and the sign-off file."""
    check_cards_mode(settings.cards_mode, default_registry(settings.bench_baseline))
    load_signoff(review_file(settings))


def modes(mode: CardsMode, registry: Iterable[Any]) -> dict[str, str]:
    """Each service's mode, for /readyz."""
    return {service.id: mode.of(service.id) for service in registry}


def warn_at_start(review: ContentReview, service_modes: Mapping[str, str]) -> None:
    """Say at start what a pilot or a go-live must know: silent services, unsigned content."""
    if silent := [sid for sid, mode in service_modes.items() if mode == "silent"]:
        log.warning("CARDS_MODE: %s silent: cards are evaluated and recorded, none is sent", ", ".join(silent))
    if not review.signed_off and any(mode == "live" for mode in service_modes.values()):
        log.warning(
            "%s Running fingerprint %s; sign-off file %s; see README 'Going live safely'",
            review.statement(),
            review.fingerprint[:SHORT],
            review.source,
        )
