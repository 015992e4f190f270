"""Value sets and code systems shipped as FHIR JSON, loaded once and matched in memory.

An organisation can replace any file under `content/valuesets/` (for instance with a full
expansion from its terminology server) without touching code. Matching uses the ValueSet's
`expansion.contains`; ICD-10-CM codes also match their descendants by prefix (B00.1 is-a B00),
because ICD-10-CM is hierarchical by construction. A value set may list case-insensitive
whole-word text terms in the `text-match` extension (for records coded only by text). Codes in
`compose.exclude` never match, nor (ICD-10-CM) their descendants: "Z3A.x except Z3A.00".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cards.errors import ContentError

CONTENT = Path(__file__).parent / "content"
BASE_URL = "https://acne-scar-cds.example/fhir"
TEXT_MATCH = f"{BASE_URL}/StructureDefinition/text-match"
UNVERIFIED = f"{BASE_URL}/StructureDefinition/unverified-code"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _normalise(system: str, code: str) -> str:
    code = code.strip()
    return code.replace(".", "").upper() if system == ICD10CM else code


@dataclass(frozen=True)
class Coding:
    """A (system, code) pair with optional display: what the rules compare."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class ValueSet:
    """One ValueSet's expansion and text terms, ready for matching."""

    url: str
    name: str
    codes: frozenset[tuple[str, str]]
    unverified: frozenset[tuple[str, str]]
    text_pattern: re.Pattern[str] | None
    excluded: frozenset[tuple[str, str]] = frozenset()

    def has_code(self, system: str | None, code: str | None) -> bool:
        """True when system|code is in the expansion (or below an ICD-10-CM code in it), and
        not excluded (nor below an excluded ICD-10-CM code)."""
        if not system or not code:
            return False
        norm = _normalise(system, code)
        return self._within(self.codes, system, norm) and not self._within(self.excluded, system, norm)

    @staticmethod
    def _within(codes: frozenset[tuple[str, str]], system: str, norm: str) -> bool:
        if (system, norm) in codes:
            return True
        if system == ICD10CM:
            return any((system, norm[:n]) in codes for n in range(3, len(norm)))
        return False

    def has_text(self, text: str | None) -> bool:
        """True when one of the value set's text terms occurs in `text` as a whole word."""
        return bool(text and self.text_pattern and _found(self.text_pattern, text))

    def matches(self, codings: Iterable[Coding], texts: Iterable[str | None] = ()) -> bool:
        """True when any coding is in the value set, or any text names one of its terms."""
        return any(self.has_code(c.system, c.code) for c in codings) or any(self.has_text(t) for t in texts)


@functools.lru_cache(maxsize=4096)
def _found(pattern: re.Pattern[str], text: str) -> bool:
    """Whether `pattern` occurs in `text`, remembered: a chart repeats its words (one medication's
    name on every request and dispense) and the selection reads every resource (issue 18)."""
    return pattern.search(text) is not None


def _load_valueset(data: Mapping[str, Any], path: Path) -> ValueSet:
    if data.get("resourceType") != "ValueSet" or "url" not in data:
        raise ContentError(f"{path.name}: not a ValueSet with a url")
    try:
        contains = data["expansion"]["contains"]
    except KeyError as exc:
        raise ContentError(f"{path.name}: ValueSet has no expansion.contains") from exc
    codes, unverified = set(), set()
    for item in contains:
        key = (item["system"], _normalise(item["system"], item["code"]))
        codes.add(key)
        if any(e.get("url") == UNVERIFIED and e.get("valueBoolean") for e in item.get("extension", [])):
            unverified.add(key)
    excluded = frozenset(
        (group["system"], _normalise(group["system"], concept["code"]))
        for group in data.get("compose", {}).get("exclude", [])
        for concept in group.get("concept", [])
    )
    terms = [e["valueString"] for e in data.get("extension", []) if e.get("url") == TEXT_MATCH]
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE) if terms else None
    return ValueSet(data["url"], path.stem, frozenset(codes), frozenset(unverified), pattern, excluded)


@dataclass(frozen=True)
class Terminology:
    """Every value set and code system the rules use, keyed by file name (e.g. "isotretinoin")."""

    valuesets: Mapping[str, ValueSet]
    codesystems: Mapping[str, Mapping[str, Any]]
    conceptmaps: Mapping[str, Mapping[tuple[str, str], str]]

    def __getitem__(self, name: str) -> ValueSet:
        return self.valuesets[name]

    def union(self, names: Iterable[str]) -> ValueSet:
        """One value set holding the codes and text terms of several (for fast selection)."""
        sets = [self.valuesets[n] for n in names]
        patterns = [v.text_pattern.pattern for v in sets if v.text_pattern]
        return ValueSet(
            url="urn:union:" + ",".join(v.name for v in sets),
            name="+".join(v.name for v in sets),
            codes=frozenset().union(*(v.codes for v in sets)),
            unverified=frozenset().union(*(v.unverified for v in sets)),
            text_pattern=re.compile("|".join(patterns), re.IGNORECASE) if patterns else None,
            # A code one set excludes may be another's (Z3A.00 is not "pregnant", yet a chapter-O
            # code is "uncertain"): the union excludes only what every set excludes.
            excluded=frozenset.intersection(*(v.excluded for v in sets)) if sets else frozenset(),
        )

    def codesystem_url(self, name: str) -> str:
        """Canonical URL of a shipped CodeSystem."""
        return str(self.codesystems[name]["url"])

    @classmethod
    def load(cls, root: Path = CONTENT) -> Terminology:
        """Read every ValueSet and CodeSystem file; a broken file stops the boot."""
        valuesets, codesystems = {}, {}
        for path in sorted((root / "valuesets").glob("*.json")):
            valuesets[path.stem] = _load_valueset(_read_json(path), path)
        for path in sorted((root / "codesystems").glob("*.json")):
            data = _read_json(path)
            if data.get("resourceType") != "CodeSystem":
                raise ContentError(f"{path.name}: not a CodeSystem")
            codesystems[path.stem] = data
        conceptmaps = {
            path.stem: _load_conceptmap(_read_json(path), path)
            for path in sorted((root / "conceptmaps").glob("*.json"))
        }
        return cls(valuesets, codesystems, conceptmaps)


def _load_conceptmap(data: Mapping[str, Any], path: Path) -> dict[tuple[str, str], str]:
    """(source system, source code) -> target code, from a ConceptMap's groups."""
    if data.get("resourceType") != "ConceptMap":
        raise ContentError(f"{path.name}: not a ConceptMap")
    mapping = {}
    for group in data.get("group", []):
        for element in group.get("element", []):
            targets = element.get("target", [])
            if len(targets) != 1 or "code" not in targets[0]:
                raise ContentError(f"{path.name}: {element.get('code')} needs exactly one target code")
            mapping[(group["source"], element["code"])] = targets[0]["code"]
    return mapping


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ContentError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ContentError(f"{path}: not a JSON object")
    return data
