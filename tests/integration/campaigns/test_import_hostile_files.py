"""``winwin contacts import`` on files nobody should send but someone will: a line of
tens of MB, latin-1 and UTF-16 files, names longer than the column, rows with more cells
than the header, NUL bytes. Each refused row is reported with its line and reason, the
others are imported, nothing is dropped silently, memory stays bounded, exit status 2."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.campaigns.importer import import_csv
from services.cli import main
from services.config import get_settings
from services.db.migrate import upgrade
from services.db.models import Contact
from services.db.session import make_engine, make_sessionmaker
from tests.integration.campaigns.test_importer import _settings

HEADER = "external_id,email,name,role,consent_email\n"


def _rows(first: int, last: int) -> str:
    return "".join(
        f"f{i},fam{i}@example.net,Parent {i},parent,confirmed\n" for i in range(first, last)
    )


def _names(url: str) -> dict[str, str | None]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            return dict(s.execute(select(Contact.external_id, Contact.name)).tuples().all())
    finally:
        engine.dispose()


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'contacts.db'}"


def _rejections(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("line ")]


def test_a_huge_line_is_refused_alone_with_bounded_memory(tmp_path: Path, capsys: Any) -> None:
    """Before: the csv module's field limit raised after 1,000 rows were saved, exit 1,
    and the rows after it were never read."""
    path, url = tmp_path / "huge.csv", _url(tmp_path)
    huge = 30_000_000
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER + _rows(0, 1100))
        fh.write(f'f-huge,,"{"x" * huge}",parent,confirmed\n')  # line 1102
        fh.write(_rows(1100, 1200))
    upgrade(url)  # the schema first: memory is measured on the import alone
    tracemalloc.start()
    try:
        status = import_csv(_settings(url, tmp_path), str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert status == 2
    assert "contacts: 1200 created, 0 updated, 1 rejected" in out
    assert _rejections(err) == ["line 1102: line longer than 100,000 characters: skipped"]
    assert peak < huge / 3, f"peak {peak:,} bytes for a {huge:,}-character line"
    names = _names(url)
    assert len(names) == 1200 and "f-huge" not in names and names["f1199"] == "Parent 1199"


def test_utf16_and_utf8_with_bom_are_read(tmp_path: Path, capsys: Any) -> None:
    text = HEADER + "a1,,Zoë Ñúñez,parent,confirmed\na2,,李小龍,parent,confirmed\n"
    settings = _settings(_url(tmp_path), tmp_path)
    for name, encoding in [("u16.csv", "utf-16"), ("u8bom.csv", "utf-8-sig")]:
        (tmp_path / name).write_bytes(text.encode(encoding))
        assert import_csv(settings, str(tmp_path / name)) == 0
    assert _names(_url(tmp_path)) == {"a1": "Zoë Ñúñez", "a2": "李小龍"}
    assert "rejected" not in capsys.readouterr().err


def test_latin1_is_refused_by_line_or_read_with_encoding(tmp_path: Path, capsys: Any) -> None:
    """Before: a UnicodeDecodeError traceback line, exit 1, no line number."""
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "a1,,Ann,parent,confirmed\na2,,Zoë,parent,confirmed\n"
                      "a3,,Bo,parent,confirmed\n").encode("latin-1"))  # fmt: skip
    settings = _settings(_url(tmp_path), tmp_path)
    assert import_csv(settings, str(path)) == 2
    out, err = capsys.readouterr()
    assert "contacts: 2 created, 0 updated, 1 rejected" in out
    assert _rejections(err) == [
        "line 3: not valid utf-8 (byte 0xEB in column 3): save the file as UTF-8, or name "
        "its encoding with --encoding (e.g. --encoding latin-1)"
    ]
    assert import_csv(settings, str(path), encoding="latin-1") == 0
    assert _names(_url(tmp_path)) == {"a1": "Ann", "a2": "Zoë", "a3": "Bo"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"x1,,{'n' * 300},parent,confirmed", "name: 300 characters, at most 200"),
        ("x1,,Ann,parent,confirmed,surplus", "6 cells where the header has 5 columns"),
        ("x1,,A\x00nn,parent,confirmed", "a NUL character (0x00) is not allowed in a cell"),
        (f"x1,,Ann,{'r' * 51},confirmed", "role: 51 characters, at most 50"),
    ],
)
def test_a_row_the_columns_cannot_hold_is_refused_with_its_line(
    tmp_path: Path, capsys: Any, line: str, reason: str
) -> None:
    """Before: a 300-character name was saved (SQLite does not enforce VARCHAR(200)), and
    a surplus cell was dropped without a word."""
    path, rejects = tmp_path / "c.csv", tmp_path / "why.csv"
    path.write_text(HEADER + _rows(0, 2) + line + "\n" + _rows(2, 3), encoding="utf-8")
    status = import_csv(_settings(_url(tmp_path), tmp_path), str(path), rejects=str(rejects))
    assert status == 2
    assert _rejections(capsys.readouterr().err) == [f"line 4: {reason}"]
    with rejects.open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["line", "reason"], ["4", reason]]
    assert set(_names(_url(tmp_path))) == {"f0", "f1", "f2"}


def test_lines_are_counted_as_an_editor_shows_them(tmp_path: Path, capsys: Any) -> None:
    """A quoted cell spanning lines and blank lines do not shift the reported lines."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + 'a1,,"Ann\nand Bo",parent,confirmed\n\nbad,,B,parent,maybe\n')
    assert import_csv(_settings(_url(tmp_path), tmp_path), str(path)) == 2
    assert _rejections(capsys.readouterr().err) == [
        "line 5: consent_email: 'maybe' is not one of confirmed, unconfirmed, unsubscribed"
    ]
    assert _names(_url(tmp_path)) == {"a1": "Ann\nand Bo"}


def test_the_command_exits_2_and_takes_an_encoding(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes((HEADER + "a1,,Zoë,parent,confirmed\n").encode("cp1252"))
    monkeypatch.setenv("WINWIN_DATABASE_URL", _url(tmp_path))
    monkeypatch.setenv("WINWIN_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        assert main(["contacts", "import", str(path)]) == 2
        assert main(["contacts", "import", str(path), "--encoding", "cp1252"]) == 0
        assert main(["contacts", "import", str(path), "--encoding", "klingon"]) == 2
    finally:
        get_settings.cache_clear()
    assert "--encoding klingon: not an encoding Python knows" in capsys.readouterr().err
    assert _names(_url(tmp_path)) == {"a1": "Zoë"}
