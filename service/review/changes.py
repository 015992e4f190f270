"""What changed since a previous review package, or since a git ref: card texts, rules, codes.

A package keeps a snapshot of what it showed (`manifest.json`): the fingerprint and the file
digests it covers, each card's words and rule, the evidence, the plan sections and withheld
reasons, every value set's codes, every code system's concepts, and which cards each fixture
got. A git ref gives the same snapshot of the content at that ref (read with `git archive`; no
fixture outcomes, since the rules' code of that ref is not run). The snapshot is read from the
raw files, not through today's validators, so an older catalogue can still be compared.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.governance import fingerprint

SNAPSHOT_FORMAT = 1
CARD_TEXT = ("summary", "detail")
CARD_RULE = ("rule", "fires_when", "indicator", "evidence", "override_reasons")


class PreviousUnavailable(Exception):
    """--since names neither a review package nor a git ref that can be read."""


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def snapshot_of(core: Path, fixtures: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """What the content under `core` (a `cards/` folder) says, for comparing later."""
    content = core / "content"
    catalogue = _yaml(content / "catalogue.yaml") or {}
    digest, files = fingerprint(core)
    cards = {
        cid: {
            k: (c.get(k, []) if k in ("evidence", "override_reasons") else str(c.get(k, "")).strip())
            for k in CARD_TEXT + CARD_RULE
        }
        for cid, c in (catalogue.get("cards") or {}).items()
    }
    sections = {
        k: v if isinstance(v, str) else v.get("text", "") for k, v in (catalogue.get("plan_sections") or {}).items()
    }
    return {
        "format": SNAPSHOT_FORMAT,
        "version": str((catalogue.get("guideline") or {}).get("version", "")),
        "fingerprint": digest,
        "files": dict(files),
        "cards": cards,
        "plan_sections": {k: str(v).strip() for k, v in sections.items()},
        "withheld": {k: str(v) for k, v in (catalogue.get("withheld") or {}).items()},
        "evidence": {k: v.get("citation", "") for k, v in (_yaml(content / "evidence.yaml") or {}).items()},
        "valuesets": {
            p.stem: _codes(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted((content / "valuesets").glob("*.json"))
        },
        "codesystems": {
            p.stem: _concepts(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted((content / "codesystems").glob("*.json"))
        },
        "fixtures": dict(fixtures) if fixtures is not None else None,
    }


def _codes(valueset: Mapping[str, Any]) -> dict[str, str]:
    """system|code -> display, "(unverified)" appended where the value set says so."""
    codes = {}
    for item in valueset.get("expansion", {}).get("contains", []):
        unverified = any(
            e.get("valueBoolean")
            for e in item.get("extension", [])
            if str(e.get("url", "")).endswith("/unverified-code")
        )
        codes[f"{item['system']}|{item['code']}"] = item.get("display", "") + (" (unverified)" if unverified else "")
    for group in valueset.get("compose", {}).get("exclude", []):
        for concept in group.get("concept", []):
            codes[f"{group['system']}|{concept['code']}"] = "(excluded)"
    for extension in valueset.get("extension", []):
        if str(extension.get("url", "")).endswith("/text-match"):
            codes[f"text|{extension['valueString']}"] = "(text term)"
    return codes


def _concepts(codesystem: Mapping[str, Any]) -> dict[str, str]:
    concepts = {}
    for concept in codesystem.get("concept", []):
        properties = sorted(
            f"{p.get('code')}={next((v for k, v in p.items() if k.startswith('value')), '')}"
            for p in concept.get("property", [])
        )
        concepts[concept["code"]] = concept.get("display", "") + (f" [{', '.join(properties)}]" if properties else "")
    return concepts


# ----- reading the previous one -----------------------------------------------------------------


def previous(since: str, repository: Path) -> tuple[dict[str, Any], str]:
    """The snapshot `since` names (a package folder, else a git ref of `repository`), and its label."""
    folder = Path(since)
    if (folder / "manifest.json").is_file():
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")), f"the package in {since}"
    if folder.exists():
        raise PreviousUnavailable(f"{since} has no manifest.json: it is not a review package")
    return at_git_ref(since, repository), f"git {since}"


def at_git_ref(ref: str, repository: Path) -> dict[str, Any]:
    """The snapshot of `cards/` at a git ref, read with `git archive` (the work tree is not touched)."""
    if ref.startswith("-"):
        raise PreviousUnavailable(f"{ref!r} is not a git ref")
    try:
        archive = subprocess.run(
            ["git", "-C", str(repository), "archive", "--format=tar", ref, "cards"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        raise PreviousUnavailable(
            f"{ref!r} is neither a review package folder nor a git ref of "
            f"{repository}: {stderr.decode(errors='replace').strip() or exc}"
        ) from None
    with (
        tempfile.TemporaryDirectory(prefix="acne-scar-cds-review-") as tmp,
        tarfile.open(fileobj=io.BytesIO(archive)) as tar,
    ):
        tar.extractall(tmp, filter="data")
        return snapshot_of(Path(tmp) / "cards")


# ----- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextChange:
    """A text that changed, as runs of (kind, words): kind is "same", "del" or "ins"."""

    where: str
    runs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Change:
    """Something added, removed or changed, in one line."""

    where: str
    what: str
    before: str = ""
    after: str = ""


@dataclass
class Changes:
    """Everything that differs, by kind; empty lists when nothing did."""

    before_label: str
    before_version: str
    before_fingerprint: str
    files: list[Change] = field(default_factory=list)
    card_texts: list[TextChange] = field(default_factory=list)
    cards: list[Change] = field(default_factory=list)
    rules: list[Change] = field(default_factory=list)
    codes: list[Change] = field(default_factory=list)
    fixtures: list[Change] = field(default_factory=list)
    fixtures_compared: bool = False

    @property
    def count(self) -> int:
        return sum(len(x) for x in (self.card_texts, self.cards, self.rules, self.codes, self.fixtures))


WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(where: str, before: str, after: str) -> TextChange:
    """The two texts as runs of unchanged, deleted and inserted words."""
    old, new = WORDS.findall(before), WORDS.findall(after)
    runs: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            runs.append(("same", "".join(old[i1:i2])))
        if tag in ("delete", "replace"):
            runs.append(("del", "".join(old[i1:i2])))
        if tag in ("insert", "replace"):
            runs.append(("ins", "".join(new[j1:j2])))
    return TextChange(where, tuple(runs))


def _keyed(before: Mapping[str, Any], after: Mapping[str, Any], where: str) -> tuple[list[Change], list[str]]:
    """Added and removed keys as changes, and the keys in both."""
    changes = [Change(f"{where} {k}", "added") for k in after if k not in before]
    changes += [Change(f"{where} {k}", "removed") for k in before if k not in after]
    return changes, [k for k in after if k in before]


def compare(before: Mapping[str, Any], after: Mapping[str, Any], label: str) -> Changes:
    """What `after` (this package) changes of `before`."""
    changes = Changes(label, str(before.get("version", "")), str(before.get("fingerprint", "")))
    files, both = _keyed(before.get("files", {}), after["files"], "file")
    changes.files = files + [Change(f"file {f}", "changed") for f in both if before["files"][f] != after["files"][f]]
    _compare_cards(before, after, changes)
    for kind in ("plan_sections", "withheld"):
        added, both = _keyed(before.get(kind, {}), after[kind], kind.replace("_", " ").rstrip("s"))
        changes.cards += added
        changes.card_texts += [
            word_diff(f"{kind.replace('_', ' ').rstrip('s')} {k}", before[kind][k], after[kind][k])
            for k in both
            if before[kind][k] != after[kind][k]
        ]
    added, both = _keyed(before.get("evidence", {}), after["evidence"], "evidence")
    changes.cards += added + [
        Change(f"evidence {k}", "citation changed", before["evidence"][k], after["evidence"][k])
        for k in both
        if before["evidence"][k] != after["evidence"][k]
    ]
    for kind in ("valuesets", "codesystems"):
        _compare_codes(kind, before.get(kind, {}), after[kind], changes)
    _compare_fixtures(before.get("fixtures"), after.get("fixtures"), changes)
    return changes


def _compare_cards(before: Mapping[str, Any], after: Mapping[str, Any], changes: Changes) -> None:
    added, both = _keyed(before.get("cards", {}), after["cards"], "card")
    changes.cards += added
    for cid in both:
        old, new = before["cards"][cid], after["cards"][cid]
        changes.card_texts += [
            word_diff(f"card {cid}: {k}", old.get(k, ""), new[k]) for k in CARD_TEXT if old.get(k, "") != new[k]
        ]
        changes.rules += [
            Change(f"card {cid}: {k}", "changed", _text(old.get(k)), _text(new[k]))
            for k in CARD_RULE
            if old.get(k) != new[k]
        ]
    # The rules' code: any change to a rule module shows here, and its effect under "fixtures".
    changes.rules += [Change(c.where, c.what) for c in changes.files if c.where.endswith(".py")]


def _compare_codes(kind: str, before: Mapping[str, Any], after: Mapping[str, Any], changes: Changes) -> None:
    label = {"valuesets": "value set", "codesystems": "code system"}[kind]
    added, both = _keyed(before, after, label)
    changes.codes += added
    for name in both:
        old, new = before[name], after[name]
        changes.codes += [
            Change(f"{label} {name}", "code added", after=f"{c} {new[c]}".strip()) for c in new if c not in old
        ]
        changes.codes += [
            Change(f"{label} {name}", "code removed", before=f"{c} {old[c]}".strip()) for c in old if c not in new
        ]
        changes.codes += [
            Change(f"{label} {name}", f"{c} changed", old[c], new[c]) for c in new if c in old and old[c] != new[c]
        ]


def _compare_fixtures(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, changes: Changes) -> None:
    if before is None or after is None:
        return
    changes.fixtures_compared = True
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes.fixtures.append(Change(f"fixture {name}", "cards changed", _text(old), _text(new)))


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
