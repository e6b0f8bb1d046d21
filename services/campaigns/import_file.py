"""The rows of a contacts CSV file, read as a stream whatever the file holds.

* Memory stays bounded: a line longer than :data:`MAX_LINE` characters is read to its end
  without being kept and refused on its own; the rows around it go on.
* Encodings: UTF-8 with or without a BOM, and UTF-16 with a BOM, are recognised
  (``auto``); any other encoding Python knows can be named (``--encoding latin-1``).
  Bytes that are not valid in the encoding never stop the import: the row holding them
  is refused with its line and the byte, and the rest goes on.
* Every row carries the line it starts on (the header is line 1), as a text editor
  counts them, so a rejection names a line the person can find.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["MAX_LINE", "ContactsFile", "Row", "count_lines", "open_text"]

MAX_LINE = 100_000  # characters on one line of the file
UNDECODABLE = "winwin-undecodable"
_MARKED = re.compile("[\udc00-\udcff]")


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Each byte that does not decode becomes a lone surrogate U+DC00+byte (never valid
    text), so the row holding it can be refused by line instead of the file by traceback."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error(UNDECODABLE, _mark_undecodable)


@dataclass(frozen=True)
class Row:
    """One row: its values by column, or the reason it cannot be read."""

    line: int
    values: dict[str, str] | None
    problem: str = ""


def detect_encoding(head: bytes) -> str:
    """The encoding a byte-order mark announces; UTF-8 without one."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def open_text(path: Path, encoding: str = "auto") -> tuple[TextIO, str]:
    """The file as text and the encoding it is read in (ValueError: unknown encoding)."""
    if encoding == "auto":
        with path.open("rb") as raw:
            encoding = detect_encoding(raw.read(4))
    codecs.lookup(encoding)  # LookupError (a ValueError) names an unknown one
    return path.open(encoding=encoding, errors=UNDECODABLE, newline=""), encoding


def count_lines(path: Path) -> int:
    """Lines in the file, read in blocks (a progress bar's total, nothing more), ended
    as the reader ends them: by ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files)."""
    lines, last = 0, b""
    with path.open("rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            lines += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            lines -= last == b"\r" and block.startswith(b"\n")  # a \r\n across two blocks
            last = block[-1:]
    return lines + (last not in (b"", b"\n", b"\r"))


class _Lines:
    """The text's lines, at most ``limit`` characters each. A longer one is read to its
    end without being kept, noted in ``refused``, and given to the CSV reader as a blank
    line (which it answers with an empty row)."""

    def __init__(self, text: TextIO, limit: int):
        self.text, self.limit = text, limit
        self.number = 0  # lines given out so far
        self.refused: list[int] = []

    def __iter__(self) -> Iterator[str]:
        while line := self.text.readline(self.limit + 1):
            self.number += 1
            if len(line) <= self.limit:
                yield line
                continue
            while line and not line.endswith(("\n", "\r")):
                line = self.text.readline(self.limit)
            self.refused.append(self.number)
            yield "\n"


class ContactsFile:
    """The header and then the rows of a CSV file (iterate once)."""

    def __init__(self, text: TextIO, encoding: str, limit: int = MAX_LINE):
        self.encoding, self.limit = encoding, limit
        self._lines = _Lines(text, limit)
        self._reader = csv.reader(iter(self._lines))
        self.header = [c.strip() for c in next(self._reader, [])]
        self._end = self._lines.number  # last line of the row read before

    @property
    def lines_read(self) -> int:
        return self._lines.number

    def header_problem(self) -> str:
        return self._undecodable(self.header)

    def __iter__(self) -> Iterator[Row]:
        while True:
            try:
                cells = next(self._reader)
                problem = self._problem(cells)
            except StopIteration:
                return
            except csv.Error as exc:
                cells, problem = ["?"], f"not readable as CSV: {exc}"
            yield from self._refused()
            start, self._end = self._end + 1, self._lines.number
            if problem:
                yield Row(start, None, problem)
            elif cells:  # a blank line is no row
                yield Row(start, dict(zip(self.header, cells, strict=False)))

    def _refused(self) -> Iterator[Row]:
        for number in self._lines.refused:
            yield Row(number, None, f"line longer than {self.limit:,} characters: skipped")
        self._lines.refused.clear()

    def _problem(self, cells: list[str]) -> str:
        if len(cells) > len(self.header):
            return f"{len(cells)} cells where the header has {len(self.header)} columns"
        return self._undecodable(cells)

    def _undecodable(self, cells: list[str]) -> str:
        for column, cell in enumerate(cells, start=1):
            if found := _MARKED.search(cell):
                byte = ord(found.group()) - 0xDC00
                return (
                    f"not valid {self.encoding} (byte 0x{byte:02X} in column {column}): "
                    "save the file as UTF-8, or name its encoding with --encoding "
                    "(e.g. --encoding latin-1)"
                )
        return ""
