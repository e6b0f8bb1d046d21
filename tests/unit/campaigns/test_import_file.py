"""services.campaigns.import_file: the lines a contacts file has, however they end."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.campaigns.import_file import ContactsFile, count_lines, open_text


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=repr)
@pytest.mark.parametrize("last", [True, False], ids=["ended", "unended"])
def test_the_total_counts_the_rows_the_reader_reads_whatever_ends_the_lines(
    tmp_path: Path, end: str, last: bool
) -> None:
    """A file saved with only \\r (old Mac line ends) showed 0 rows of 0 while importing 3."""
    text = end.join(["external_id,name", "fam-1,Ann", "fam-2,Bo", "fam-3,Cy"]) + end * last
    path = tmp_path / "contacts.csv"
    path.write_bytes(text.encode())
    opened, encoding = open_text(path)
    with opened:
        rows = list(ContactsFile(opened, encoding))
    assert len(rows) == 3
    assert count_lines(path) - 1 == 3


def test_a_crlf_split_between_two_blocks_is_one_line_end(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"x" * ((1 << 20) - 1) + b"\r\n" + b"a\rb\n\nc")
    assert count_lines(path) == 5
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert count_lines(empty) == 0
