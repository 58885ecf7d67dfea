"""Validators for typed answers: whole numbers, dates (full or month and year) and short text.

Each returns the coded value, or a `Problem` naming what was expected; they never raise.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """Why an answer was not accepted: a key into the texts' `problems`, with its values."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Full-width digits and punctuation to ASCII, surrounding whitespace removed."""
    return unicodedata.normalize("NFKC", text).strip()


_INTEGER = re.compile(r"^[0-9]{1,6}$")


def parse_number(text: str, *, minimum: int, maximum: int) -> str | Problem:
    """A whole number within [minimum, maximum], as its decimal string."""
    cleaned = normalise(text).rstrip("次")  # "3次" is a natural way to write a count in Chinese
    if not _INTEGER.match(cleaned) or not minimum <= int(cleaned) <= maximum:
        return Problem("number", {"min": minimum, "max": maximum})
    return str(int(cleaned))


_FULL = [
    re.compile(r"^([0-9]{4})\s*[-/.]\s*([0-9]{1,2})\s*[-/.]\s*([0-9]{1,2})$"),
    re.compile(r"^([0-9]{4})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*[日号]?$"),
]
_MONTH = [
    re.compile(r"^([0-9]{4})\s*[-/.]\s*([0-9]{1,2})$"),
    re.compile(r"^([0-9]{4})\s*年\s*([0-9]{1,2})\s*月?$"),
    re.compile(r"^([0-9]{1,2})\s*/\s*([0-9]{4})$"),  # month/year, as written in English
]


def _month_matches(text: str) -> tuple[int, int] | None:
    for index, pattern in enumerate(_MONTH):
        found = pattern.match(text)
        if found:
            first, second = int(found.group(1)), int(found.group(2))
            return (second, first) if index == 2 else (first, second)
    return None


def parse_date(
    text: str, *, today: dt.date, not_before: dt.date | None, month_year: bool
) -> str | Problem:
    """A past date as YYYY-MM-DD, or YYYY-MM when only the month is given and that is allowed.

    "Past" includes today; a month is accepted if it is not after today's month and not before
    the month of `not_before`.
    """
    cleaned = normalise(text)
    if len(cleaned) > 40:
        return Problem("date_format")
    for pattern in _FULL:
        found = pattern.match(cleaned)
        if found:
            try:
                day = dt.date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
            except ValueError:
                return Problem("date_format")
            return _check_day(day, today=today, not_before=not_before)
    month = _month_matches(cleaned)
    if month is None:
        return Problem("date_format")
    year, number = month
    if not 1 <= number <= 12 or year < 1900:
        return Problem("date_format")
    if not month_year:
        return Problem("date_month_only")
    if (year, number) > (today.year, today.month):
        return Problem("date_future")
    if not_before is not None and (year, number) < (not_before.year, not_before.month):
        return Problem("date_before_enrolment", {"date": not_before.isoformat()})
    return f"{year:04d}-{number:02d}"


def _check_day(day: dt.date, *, today: dt.date, not_before: dt.date | None) -> str | Problem:
    if day.year < 1900:
        return Problem("date_format")
    if day > today:
        return Problem("date_future")
    if not_before is not None and day < not_before:
        return Problem("date_before_enrolment", {"date": not_before.isoformat()})
    return day.isoformat()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_text(text: str, *, max_length: int) -> str | Problem:
    """Short free text: control characters dropped, not blank, at most `max_length` long."""
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        return Problem("text_empty")
    if len(cleaned) > max_length:
        return Problem("text_too_long", {"max": max_length})
    return cleaned
