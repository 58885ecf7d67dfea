"""Exports keep a participant's free text from running as a spreadsheet formula."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from followup.exports import spreadsheet_safe


def test_formula_starts_are_neutralised_and_numbers_pass() -> None:
    assert spreadsheet_safe('=HYPERLINK("http://x","click")') == '\'=HYPERLINK("http://x","click")'
    assert spreadsheet_safe("+1+1") == "'+1+1"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("-1") == "-1" and spreadsheet_safe("-2.5") == "-2.5"
    assert spreadsheet_safe("头痛") == "头痛" and spreadsheet_safe(3) == 3


@given(st.text(max_size=50))
def test_no_cell_starts_a_formula(text: str) -> None:
    cell = spreadsheet_safe(text)
    assert not (isinstance(cell, str) and cell[:1] in {"=", "+", "@", "\t", "\r"})
