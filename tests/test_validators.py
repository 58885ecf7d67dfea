"""Property tests for the typed-answer validators: dates, free text and numbers."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from study.validators import Problem, parse_date, parse_number, parse_text

TODAY = dt.date(2026, 3, 2)
ENROLLED = dt.date(2026, 1, 15)
FULL_WIDTH = str.maketrans("0123456789-/", "０１２３４５６７８９－／")


def full_date_forms(day: dt.date) -> list[str]:
    iso = day.isoformat()
    return [
        iso,
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month:02d}.{day.day:02d}",
        f"{day.year}年{day.month}月{day.day}日",
        f" {day.year} 年 {day.month} 月 {day.day} 号 ",
        iso.translate(FULL_WIDTH),
    ]


def month_forms(year: int, month: int) -> list[str]:
    return [f"{year}-{month:02d}", f"{year}/{month}", f"{year}年{month}月", f"{month}/{year}",
            f"{year}年{month}"]  # fmt: skip


@given(st.dates(min_value=ENROLLED, max_value=TODAY))
def test_any_past_date_since_enrolment_is_accepted_in_every_form(day: dt.date) -> None:
    for text in full_date_forms(day):
        assert parse_date(text, today=TODAY, not_before=ENROLLED, month_year=True) == (
            day.isoformat()
        ), text


@given(st.dates(min_value=TODAY + dt.timedelta(days=1), max_value=dt.date(2100, 1, 1)))
def test_future_dates_are_refused(day: dt.date) -> None:
    for text in full_date_forms(day):
        assert parse_date(text, today=TODAY, not_before=ENROLLED, month_year=True) == Problem(
            "date_future"
        )


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=ENROLLED - dt.timedelta(days=1)))
def test_dates_before_enrolment_are_refused(day: dt.date) -> None:
    result = parse_date(day.isoformat(), today=TODAY, not_before=ENROLLED, month_year=True)
    assert result == Problem("date_before_enrolment", {"date": "2026-01-15"})


@given(st.integers(2020, 2030), st.integers(1, 12))
def test_month_and_year_alone_are_checked_by_month(year: int, month: int) -> None:
    expected: str | Problem = f"{year}-{month:02d}"
    if (year, month) > (TODAY.year, TODAY.month):
        expected = Problem("date_future")
    elif (year, month) < (ENROLLED.year, ENROLLED.month):
        expected = Problem("date_before_enrolment", {"date": "2026-01-15"})
    for text in month_forms(year, month):
        assert parse_date(text, today=TODAY, not_before=ENROLLED, month_year=True) == expected
        if not isinstance(expected, Problem):
            refused = parse_date(text, today=TODAY, not_before=ENROLLED, month_year=False)
            assert refused == Problem("date_month_only")


@given(st.text(max_size=60))
def test_any_text_gives_a_valid_date_or_a_problem(text: str) -> None:
    result = parse_date(text, today=TODAY, not_before=ENROLLED, month_year=True)
    if isinstance(result, Problem):
        assert result.key.startswith("date_")
        return
    if len(result) == 7:
        assert "2026-01" <= result <= "2026-03"
    else:
        assert ENROLLED <= dt.date.fromisoformat(result) <= TODAY


@given(st.text(max_size=700), st.integers(1, 500))
def test_free_text_is_trimmed_capped_and_never_blank(text: str, cap: int) -> None:
    result = parse_text(text, max_length=cap)
    if isinstance(result, Problem):
        assert result.key in ("text_empty", "text_too_long")
        if result.key == "text_too_long":
            assert result.params == {"max": cap}
        return
    assert 1 <= len(result) <= cap
    assert result == result.strip()
    assert not any(ord(c) < 32 and c not in "\t\n\r" for c in result)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
def test_free_text_keeps_what_was_typed(text: str) -> None:
    result = parse_text(text, max_length=500)
    assert result == (text.strip() or Problem("text_empty"))


@given(st.integers(-1000, 1000))
def test_numbers_are_accepted_only_in_range(n: int) -> None:
    result = parse_number(str(n), minimum=1, maximum=50)
    assert result == (str(n) if 1 <= n <= 50 else Problem("number", {"min": 1, "max": 50}))


@given(st.text(max_size=30))
def test_any_text_gives_a_number_in_range_or_a_problem(text: str) -> None:
    result = parse_number(text, minimum=1, maximum=50)
    assert isinstance(result, Problem) or 1 <= int(result) <= 50
