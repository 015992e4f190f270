"""FHIR date handling: partial dates, date-times and calendar-month arithmetic."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Literal

Bound = Literal["earliest", "latest"]


def to_date(value: object, bound: Bound = "latest") -> date | None:
    """Turn a FHIR date / dateTime (as parsed by fhir.resources) into a calendar date.

    Partial dates ("2026", "2026-09") stay strings after validation; `bound` says which end of
    the interval they stand for. A last dose of "2026-09" must be read as 2026-09-30: reading
    it as 2026-09-01 would end a safety window a month early.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value:
        return None
    parts = value[:10].split("-")
    try:
        year = int(parts[0])
        if len(parts) == 1:
            return date(year, 1, 1) if bound == "earliest" else date(year, 12, 31)
        month = int(parts[1])
        if len(parts) == 2:
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1) if bound == "earliest" else date(year, month, last)
        return date(year, month, int(parts[2]))
    except ValueError:
        return None


def add_months(day: date, months: int) -> date:
    """Calendar-month arithmetic, clamped to the month's last day (2026-08-31 + 6 = 2027-02-28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def years_between(start: date, end: date) -> int:
    """Whole years from `start` to `end` (an age)."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))
