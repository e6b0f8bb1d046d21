"""CSV that opens safely in a spreadsheet: every CSV WINWIN writes goes through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets (``+cmd|' /C calc'!A0`` runs a program).
Following OWASP's advice on CSV injection, such a text cell gets a leading single quote,
which the spreadsheet shows as text. Numbers stay numbers: ``-3`` is written as ``-3``.
The dashboard's CSV download (``templates/web/app.js``, ``WW.csvText``) applies the
same rule in the browser.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

__all__ = ["FORMULA_STARTS", "SafeWriter", "csv_text", "safe_cell", "write_rows"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it and never runs it: text that would start a
    formula gets a leading ``'``; numbers, empty cells and other text are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """A ``csv.writer`` whose every cell goes through :func:`safe_cell`."""

    def __init__(self, out: IO[str]):
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in cells])


def write_rows(
    out: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]
) -> None:
    """A header and the rows (sequences, or mappings read by ``columns``), neutralised."""
    writer = SafeWriter(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c) for c in columns] if isinstance(row, Mapping) else row)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> str:
    """The CSV of ``rows`` as a string (see :func:`write_rows`)."""
    buffer = io.StringIO()
    write_rows(buffer, columns, rows)
    return buffer.getvalue()
