"""Read what can be read: a FHIR resource as real clients write it, into a validated model.

GUIDELINE §1 (v2): unreadable is not absent, and an error is not an answer. A resource that does
not validate as FHIR R4 is neither refused (the EHR would show a refusal as "all clear") nor
dropped (a dropped isotretinoin record is false reassurance). It is read in three moves, each
driven by what the fhir.resources (pydantic) validator reports, until it validates:

1. **Repair** shapes whose meaning is unambiguous: one object where R4 expects a list (the CDS
   Hooks sandbox sends `MedicationRequest.category` so), a list of one where R4 expects one
   object, the R5 `medication` element (a CodeableReference) for R4's `medication[x]`.
2. **Mark as absent** a required element that is missing (a draft order still being composed has
   no `intent`): FHIR's own data-absent-reason extension (FHIR R4 §Extensibility, "Special Case"),
   so the model reads the element as unknown, never as an invented value.
3. **Leave out** an element whose value cannot be read (an impossible date, a number where text is
   due, an element R4 does not define), and say so: the caller keeps these problems beside the
   facts, and compares what the record mentioned before and after (cards.resources).

A resource that still does not validate is unreadable (model None), with its problems.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from pydantic import ValidationError

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MAX_PASSES = 8  # each pass fixes every error the validator reported; real records need one or two
CHOICE_MISSING = re.compile(r"Expect any of field value from this list \[(.*)\]")
CHOICE_TWICE = re.compile(r"Any of one field value is expected from this list \[(.*)\], but got multiple")
# Date elements the rules read. FHIR dates are JSON strings; pydantic would read the number
# 20260926 as a Unix time (1970-08-23) and end an isotretinoin window decades early.
DATE_KEYS = frozenset(
    {
        "start",
        "end",
        "effectiveDateTime",
        "effectiveInstant",
        "issued",
        "whenHandedOver",
        "whenPrepared",
        "authoredOn",
        "onsetDateTime",
        "abatementDateTime",
        "recordedDate",
        "birthDate",
        "occurrenceDateTime",
    }
)
# R5 MedicationRequest / MedicationStatement / MedicationDispense.medication (CodeableReference)
# is R4's medicationCodeableConcept or medicationReference: the same meaning, another shape.
R5_MEDICATION = {"concept": "medicationCodeableConcept", "reference": "medicationReference"}

Path = tuple[str | int, ...]
# Resources read, kept by content: the same chart is opened many times a day, and validating a
# resource costs more than the rules that read it (issue 18). Bounded, in memory only.
READ_CACHE_SIZE = 1024
# What fhir.resources raises, besides ValidationError, on input it cannot model: nesting deeper
# than Python recurses, a contained resource of a type FHIR does not define (fhir_core: KeyError).
UNREADABLE = (RecursionError, KeyError, TypeError, ValueError, AttributeError)
MISSING = ("missing", "model_field_validation.missing")
# "Medication/iso-1" or "#med" where R4 has a Reference object: only one thing it can mean.
REFERENCE_TEXT = re.compile(r"^(#[A-Za-z0-9\-.]{1,64}|([A-Za-z]+/[A-Za-z0-9\-.]{1,64}))\Z")
REFERENCE_ELEMENTS = frozenset({"subject", "patient", "encounter", "requester", "performer", "basedOn"})


def _names_a_reference(step: str | int) -> bool:
    return isinstance(step, str) and (step.endswith("Reference") or step in REFERENCE_ELEMENTS)


def _is_resource(item: Any) -> bool:
    """A contained resource of a type FHIR R4 defines (fhir_core fails with a KeyError on others)."""
    kind = item.get("resourceType") if isinstance(item, dict) else None
    if not isinstance(kind, str):
        return False
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return False
    return True


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    return "a part of it (a contained resource?) is of a kind FHIR R4 does not define"


def absent() -> dict[str, Any]:
    """An element's value saying "unknown": only the data-absent-reason extension."""
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}


@dataclass(frozen=True)
class Reading:
    """One resource as read: the model (None when unreadable), the data it was read from, the
    shape repairs (meaning kept) and the problems (parts left out, or why nothing could be read)."""

    model: FHIRResourceModel | None
    data: dict[str, Any]
    repairs: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def read_once(model: type[FHIRResourceModel], data: dict[str, Any]) -> Reading:
    """`read`, once per content: a resource whose exact JSON was read before (by the same model)
    gets the same reading, which depends on nothing else. Readings are never changed after."""
    try:
        content = orjson.dumps(data)
    except TypeError:  # a value orjson cannot write (an integer beyond 64 bits): read it afresh
        return read(model, data)
    return _read_content(model, content)


@functools.lru_cache(maxsize=READ_CACHE_SIZE)
def _read_content(model: type[FHIRResourceModel], content: bytes) -> Reading:
    return read(model, orjson.loads(content))


def read(model: type[FHIRResourceModel], data: dict[str, Any]) -> Reading:
    """Validate `data` with `model`, repairing and leaving out what must be (module doc)."""
    dates = list(_non_string_dates(data))
    contained = data.get("contained")
    if isinstance(contained, list):  # another shape is the validator's to report
        dates += [("contained", i) for i, item in enumerate(contained) if not _is_resource(item)]
    if not dates:
        try:
            return Reading(model.model_validate(data), data)  # the common case: valid as sent
        except ValidationError as exc:
            first: ValidationError | None = exc
        except UNREADABLE as exc:
            return Reading(None, data, problems=(_unreadable(exc),))
    else:
        first = None
    return _read_repaired(model, copy.deepcopy(data), dates, first)


def _read_repaired(
    model: type[FHIRResourceModel], data: dict[str, Any], dates: list[Path], error: ValidationError | None
) -> Reading:
    repairs: list[str] = []
    problems: list[str] = []
    for path in sorted(dates, reverse=True):  # list items last first, so positions stay right
        _get(data, path[:-1]).pop(path[-1])
        problems.append(
            f"{_dotted(path)}: "
            + ("not a resource FHIR R4 defines" if path[0] == "contained" else "a number where FHIR R4 has a date")
        )
    tried: set[tuple[str, Path, str]] = set()
    for _ in range(MAX_PASSES):
        if error is None:
            try:
                return Reading(model.model_validate(data), data, tuple(repairs), tuple(problems))
            except ValidationError as exc:
                error = exc
            except UNREADABLE as exc:
                return Reading(None, data, tuple(repairs), (*problems, _unreadable(exc)))
        removed: list[Path] = []
        fixes = [f for e in error.errors() if (f := _fix(data, e, tried, removed)) is not None]
        if not fixes:
            break
        _remove_items(data, removed)
        for kind, note in fixes:
            (repairs if kind == "repair" else problems).append(note)
        error = None
    left = [f"{_dotted(tuple(e['loc'])) or '(resource)'}: {e['msg']}" for e in error.errors()[:5]] if error else []
    return Reading(None, data, tuple(repairs), (*problems, *left))


def _fix(
    data: dict[str, Any], error: Any, tried: set[tuple[str, Path, str]], removed: list[Path]
) -> tuple[str, str] | None:
    """Change `data` so that this validation error cannot recur; ("repair" | "problem", note),
    or None when nothing sensible can be done (the same error at the same place twice). Items of
    lists to leave out go to `removed`, taken out after the pass so that positions stay right."""
    loc, kind = tuple(error["loc"]), str(error["type"])
    # A missing element is not in the data: resolve its parent, then name it.
    path = (*_resolve(data, loc[:-1]), loc[-1]) if kind in MISSING and loc else _resolve(data, loc)
    message = _plain(kind, str(error["msg"]))
    if (kind, path, message) in tried:
        return None
    tried.add((kind, path, message))
    where = _dotted(path) or "(resource)"
    value = _get(data, path)
    if kind == "list_type" and path and not isinstance(value, list):
        _set(data, path, [value])
        return "repair", f"{where}: one value where FHIR R4 expects a list (read as a list of one)"
    if isinstance(value, list) and kind in ("model_validation_format", "model_type", "dict_type") and path:
        if len(value) == 1:
            _set(data, path, value[0])
            return "repair", f"{where}: a list of one where FHIR R4 expects one value (read as that value)"
        _delete(data, path, removed)
        return "problem", f"{where}: {'several values' if value else 'an empty list'} where FHIR R4 has one value"
    if kind == "missing":
        _set(data, path, absent())
        return "repair", f"{where}: required, not given (read as unknown)"
    if kind == "model_field_validation.missing":
        _set(data, (*path[:-1], f"_{path[-1]}"), absent())
        return "repair", f"{where}: required, not given (read as unknown)"
    if isinstance(value, str) and path and _names_a_reference(path[-1]) and REFERENCE_TEXT.match(value):
        _set(data, path, {"reference": value})
        return "repair", f"{where}: a reference written as text (read as a Reference)"
    if kind == "extra_forbidden" and path:
        return _unknown_element(data, path, where, removed)
    if kind == "value_error" and isinstance(value, dict):
        return _choice(value, message, where)
    if not path:
        return None
    _delete(data, path, removed)
    return "problem", f"{where}: {message}"


PLAIN = {  # pydantic error type -> what it means for a FHIR element
    "json_invalid": "not the kind of value FHIR R4 has here",
    "model_type": "not the kind of value FHIR R4 has here",
    "dict_type": "not the kind of value FHIR R4 has here",
    "model_validation_format": "not the kind of value FHIR R4 has here",
    "string_type": "not text",
    "string_pattern_mismatch": "not in the form FHIR R4 requires",
    "bool_type": "not true or false",
    "int_type": "not a whole number",
    "int_parsing": "not a whole number",
    "decimal_type": "not a number",
    "decimal_parsing": "not a number",
}


def _plain(kind: str, message: str) -> str:
    """The validator's message in a reviewer's terms: "not a valid FHIR date", not a regex."""
    if kind in PLAIN:
        return PLAIN[kind]
    if kind.startswith(("date", "datetime", "time")) or "spec regex" in message:
        return "not a valid FHIR date or time"
    return message.removeprefix("Value error, ").rstrip(".")


def _unknown_element(data: dict[str, Any], path: Path, where: str, removed: list[Path]) -> tuple[str, str]:
    """An element R4 does not define: R5's `medication` is renamed, anything else left out."""
    value = _get(data, path)
    parent = _get(data, path[:-1])
    if path[-1] == "medication" and isinstance(value, dict) and isinstance(parent, dict):
        found = [(r4, value[r5]) for r5, r4 in R5_MEDICATION.items() if r5 in value]
        if len(found) == 1 and not any(k.startswith("medication") and k != "medication" for k in parent):
            del parent["medication"]
            parent[found[0][0]] = found[0][1]
            return "repair", f"{where}: the R5 element read as R4's {found[0][0]}"
    _delete(data, path, removed)
    return "problem", f"{where}: not an element of FHIR R4"


def _choice(node: dict[str, Any], message: str, where: str) -> tuple[str, str] | None:
    """A choice element [x]: required and absent (marked absent), or given twice (left out)."""
    if match := CHOICE_MISSING.search(message):
        names = re.findall(r"'(\w+)'", match.group(1))
        if names:
            node[names[0]] = absent()
            stem = re.sub(r"[A-Z].*$", "", names[0])
            return "repair", f"{_join(where, stem)}[x]: required, not given (read as unknown)"
    if match := CHOICE_TWICE.search(message):
        names = [n for n in re.findall(r"'(\w+)'", match.group(1)) if n in node]
        for name in names:
            del node[name]
        return "problem", f"{where}: {' and '.join(names)} given together, where FHIR R4 allows one"
    return None


def _join(where: str, name: str) -> str:
    return name if where == "(resource)" else f"{where}.{name}"


# -- paths in JSON ------------------------------------------------------------------------------


def _resolve(data: Any, loc: tuple[Any, ...]) -> Path:
    """The part of a pydantic error location that exists in the data (pydantic adds steps of
    its own, such as 'root' or a validator's name)."""
    path: list[str | int] = []
    node = data
    for step in loc:
        if _has(node, step):
            path.append(step)
            node = node[step]
    return tuple(path)


def _has(node: Any, step: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _get(data: Any, path: Path) -> Any:
    """The value at `path`, or None where there is none."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _set(data: Any, path: Path, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _delete(data: Any, path: Path, removed: list[Path]) -> None:
    """Remove the element at `path` (an item of a list: later, see `_remove_items`)."""
    parent = _get(data, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        removed.append(path)


def _remove_items(data: Any, removed: list[Path]) -> None:
    """Take list items out, the last first, so that each position is still the one reported."""
    for path in sorted(set(removed), reverse=True):
        del _get(data, path[:-1])[path[-1]]


def _dotted(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _non_string_dates(data: Any, path: Path = ()) -> Iterator[Path]:
    """Paths of date elements given as numbers (or anything but text)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in DATE_KEYS and value is not None and not isinstance(value, str | dict):
                yield (*path, key)
            elif isinstance(value, dict | list):
                yield from _non_string_dates(value, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _non_string_dates(item, (*path, i))
