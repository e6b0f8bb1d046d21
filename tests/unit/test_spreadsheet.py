"""CSV exports neutralise formulas (OWASP CSV injection): text starting with = + - @ tab
or CR gets a leading quote; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from services.spreadsheet import csv_text, safe_cell

HOSTILE = ["+cmd|' /C calc'!A0", '=HYPERLINK("http://x")', "-2+3", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_starts_a_formula_is_shown_as_text(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-3, -0.5, 0, 12, None, "", "c1", "2017-08", "a=b", "x-1"])
def test_numbers_and_plain_text_are_unchanged(value: object) -> None:
    assert safe_cell(value) == value


def test_csv_text_neutralises_every_cell_of_sequences_and_mappings() -> None:
    text = csv_text(["key", "credited"], [{"key": HOSTILE[0], "credited": -1.5, "x": "="},
                                          ["=1+1", 2]])  # fmt: skip
    assert list(csv.reader(io.StringIO(text))) == [
        ["key", "credited"],
        ["'+cmd|' /C calc'!A0", "-1.5"],
        ["'=1+1", "2"],
    ]
