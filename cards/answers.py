"""Exam answers the way EHRs write them (GUIDELINE §2, v2): a Fitzpatrick skin type and a
pregnancy status, read from codes, numbers and words.

An answer that names nothing readable is "not recorded" for the skin type, never a guess; for
pregnancy status, an answer that is there but cannot be read is *unreadable*, which the record
reads as "pregnancy status uncertain" (GUIDELINE §1: unreadable is not absent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from cards.concepts import codings_of, texts_of
from cards.terminology import SNOMED, Terminology
from cards.uses import Uses

ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}
NUMERAL = r"(VI|IV|V|III|II|I|[1-6])"
# "Type IV", "type 4", "Fitzpatrick V", "Skin type: III", "phototype 2".
NAMED_TYPE = re.compile(rf"\b(?:fitzpatrick|type|phototype)\s*(?:skin\s*type\s*)?[:#]?\s*{NUMERAL}\b", re.IGNORECASE)
# A bare leading numeral: "V - brown skin, rarely burns", "IV (olive)", "2", "V brown skin".
BARE_TYPE = re.compile(rf"^\s*{NUMERAL}(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
SEPARATOR = re.compile(r"\s*($|[-–—(,:;/.])")
RANGE = re.compile(rf"\s*[-–—/]\s*{NUMERAL}\b", re.IGNORECASE)
PregnancyAnswer = Literal["pregnant", "not-pregnant", "unknown", "unreadable"]
UNKNOWN_ANSWER = {(SNOMED, "261665006")}  # SNOMED CT "Unknown" (US Core pregnancy status answer list)
YES = re.compile(r"^\s*(yes|positive|pos\.?|\+)\s*$", re.IGNORECASE)
NO = re.compile(r"^\s*(no|negative|neg\.?|-)\s*$", re.IGNORECASE)
UNKNOWN_WORDS = re.compile(r"\b(unknown|not known|unsure|uncertain|not asked|declined)\b", re.IGNORECASE)


def fitzpatrick_type(text: str | None) -> int | None:
    """The Fitzpatrick type (1-6) a text names, or None when it names none. A text naming
    several ("IV-V", "type III or IV") is read as the darkest: R4 is the cautious side, as for
    two readings on one day."""
    if not text:
        return None
    found = {_numeral(m) for m in NAMED_TYPE.findall(text)}
    if (bare := BARE_TYPE.match(text)) and _stands_alone(bare.group(1), bare.group("rest")):
        found.add(_numeral(bare.group(1)))
        found |= {_numeral(m) for m in RANGE.findall(bare.group("rest"))[:1]}
    return max(found) if found else None


def _stands_alone(token: str, rest: str) -> bool:
    """A leading numeral is a type when the end, a separator or a range follows it ("V - brown",
    "IV-V"), or a word ("V brown"), except after a bare "I" ("I burn easily" names no type)."""
    if RANGE.match(rest):
        return True
    return bool(SEPARATOR.match(rest)) or (token.upper() != "I" and rest[:1].isspace() and rest.strip()[:1].isalpha())


def _numeral(token: str) -> int:
    return int(token) if token.isdigit() else ROMAN[token.upper()]


def skin_type_answer(obs: Any) -> int | None:
    """A Fitzpatrick Observation's answer (1-6): valueInteger or valueQuantity 1-6, or a string,
    concept text, code or display naming the type."""
    numbers = [obs.valueInteger] + ([obs.valueQuantity.value] if obs.valueQuantity is not None else [])
    found = {int(n) for n in numbers if n is not None and int(n) == n and 1 <= n <= 6}
    if any(n is not None and n not in found for n in numbers):
        return None  # a number that is no skin type
    concept = obs.valueCodeableConcept
    words = [obs.valueString, *texts_of(concept), *(c.code for c in codings_of(concept))]
    found |= {t for w in words if (t := fitzpatrick_type(w)) is not None}
    return max(found) if found else None  # different readings: the darkest (R4, the cautious side)


def pregnancy_answer(obs: Any, terminology: Terminology) -> PregnancyAnswer | None:
    """What a pregnancy-status Observation (LOINC 82810-3) answers; None when it gives no answer."""
    codings = codings_of(obs.valueCodeableConcept)
    words = [w for w in [obs.valueString, *texts_of(obs.valueCodeableConcept)] if w and w.strip()]
    if not codings and not words and obs.valueBoolean is None:
        return None
    if terminology["pregnant"].matches(codings) or obs.valueBoolean is True:
        return "pregnant"
    if terminology["not-pregnant"].matches(codings) or obs.valueBoolean is False:
        return "not-pregnant"
    if any((c.system, c.code) in UNKNOWN_ANSWER for c in codings):
        return "unknown"
    return _pregnancy_words(words, terminology)


def _pregnancy_words(words: Iterable[str], terminology: Terminology) -> PregnancyAnswer:
    """An answer in words: "not pregnant" is read before "pregnant"; anything else is unreadable."""
    words = list(words)
    if any(NO.match(w) or terminology["not-pregnant"].has_text(w) for w in words):
        return "not-pregnant"
    if any(YES.match(w) or terminology["pregnant"].has_text(w) for w in words):
        return "pregnant"
    if any(UNKNOWN_WORDS.search(w) for w in words):
        return "unknown"
    return "unreadable"


USES = Uses.of(__name__, valuesets=("pregnant", "not-pregnant"))
