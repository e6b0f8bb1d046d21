"""``winwin contacts import FILE.csv``: bulk contacts with a progress bar.

The file is read as a stream (:mod:`services.campaigns.import_file`): memory stays bounded
and no row is dropped silently. Good rows are saved in batches whatever the bad ones do;
every refused row is reported as it is found, with its line and reason, on stderr and in
a CSV report (``FILE.csv.rejected.csv`` or ``--rejects``). Exit 0 when every row was
saved, 2 when any was refused.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import String
from tqdm import tqdm

from services.campaigns.contacts import CONSENT, Saved, save_contacts
from services.campaigns.import_file import ContactsFile, Row, count_lines, open_text
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Contact
from services.db.session import make_engine, make_sessionmaker
from services.domain.consent import Consent
from services.errors import UsageError
from services.spreadsheet import SafeWriter

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

KNOWN = {"external_id", "email", "name", "role", "language", "consent_email", "tags", "needs"} | {
    "birth_date", "birth_year", "guardians"}  # fmt: skip


def _length(column: str) -> int:
    """The longest text ``column`` of ``contacts`` holds (its ``String(n)``)."""
    length = cast(String, Contact.__table__.c[column].type).length
    if length is None:
        raise TypeError(f"contacts.{column} has no length")
    return length


#: The longest text each column holds (the database's own limits).
LIMITS = {c: _length(c) for c in ("external_id", "name", "role", "language")}
BATCH = 1000


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a contact, or ValueError naming the column."""
    if any("\x00" in f"{k}{v}" for k, v in row.items()):
        raise ValueError("a NUL character (0x00) is not allowed in a cell")
    ext = (row.get("external_id") or "").strip()
    if not ext or len(ext) > LIMITS["external_id"]:
        raise ValueError(f"external_id: required, at most {LIMITS['external_id']} characters")
    item: dict[str, Any] = {"external_id": ext}
    if email := (row.get("email") or "").strip():
        try:
            item["email"] = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"email: {exc}") from None
    for name in ("name", "role", "language"):
        if value := (row.get(name) or "").strip():
            if len(value) > LIMITS[name]:
                raise ValueError(f"{name}: {len(value):,} characters, at most {LIMITS[name]}")
            item[name] = value
    consent = (row.get("consent_email") or Consent.UNCONFIRMED).strip().lower()
    if consent not in CONSENT:
        raise ValueError(f"consent_email: {consent[:40]!r} is not one of {', '.join(CONSENT)}")
    item["consent"] = {"email": consent}
    if consent == Consent.UNCONFIRMED:  # asked to confirm only when the file says so
        item["double_opt_in"] = bool((row.get("consent_email") or "").strip())
    item |= child_columns(row)
    for name in ("tags", "needs"):
        if value := (row.get(name) or "").strip():
            item[name] = [t.strip() for t in value.split(";") if t.strip()]
    item["attributes"] = {
        k: v for k, v in row.items() if k not in KNOWN and k and v not in (None, "")
    }
    return item


class Rejections:
    """Every refused row as it is found: a line on stderr (above the progress bar) and a
    row of the report file, opened at the first one."""

    def __init__(self, path: Path, echo: bool = True):
        self.path, self.count, self.echo = path, 0, echo
        self._out: IO[str] | None = None
        self._writer: SafeWriter | None = None

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if self.echo:
            tqdm.write(f"line {line}: {reason}", file=sys.stderr)
        if self._writer is None and self.count == 1:
            try:
                self._out = self.path.open("w", newline="", encoding="utf-8")
            except OSError as exc:
                tqdm.write(f"(could not write {self.path}: {exc})", file=sys.stderr)
                return
            self._writer = SafeWriter(self._out)
            self._writer.writerow(["line", "reason"])
        if self._writer is not None:
            self._writer.writerow([line, reason])

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def import_csv(
    settings: Settings, path: str, encoding: str = "auto", rejects: str | None = None
) -> int:
    """Import the file; 0 when every row was saved, 2 when any was refused."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        text, encoding = open_text(file, encoding)
    except LookupError:
        raise UsageError(f"--encoding {encoding}: not an encoding Python knows") from None
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    secret = settings.secret_key.get_secret_value().encode()
    rejected = Rejections(Path(rejects) if rejects else file.with_name(file.name + ".rejected.csv"))
    with text:
        contacts = opened(ContactsFile(text, encoding), path)
        total = max(0, count_lines(file) - 1)
        with tqdm(total=total, unit="row", desc="importing contacts", file=sys.stderr) as bar:
            saved = import_rows(contacts, rejected, bar, lambda b: _save(sessions, secret, b))
    rejected.close()
    print(f"contacts: {saved.created} created, {saved.updated} updated, {rejected.count} rejected")
    if saved.kept_unsubscribed:
        print(f"{saved.kept_unsubscribed} kept unsubscribed: the file gave another consent, "
              "but only the person can subscribe again")  # fmt: skip
    if rejected.written:
        print(f"every rejected row and why: {rejected.path}")
    return 2 if rejected.count else 0


def opened(contacts: ContactsFile, path: str) -> ContactsFile:
    if problem := contacts.header_problem():
        raise UsageError(f"{path}: line 1 (the header): {problem}")
    if "external_id" not in contacts.header:
        raise UsageError(f"{path}: needs a header row with an external_id column")
    return contacts


def import_rows(contacts: ContactsFile, rejected: Rejections, bar: Any, save: Any) -> Saved:
    """Parse and save in batches; the counts of every batch added up. ``bar`` counts the
    rows read (``n``, ``update``): a tqdm bar, or an import job of the console."""
    total = Saved(0, 0, 0)
    batch: list[dict[str, Any]] = []
    for row in contacts:
        if item := _parsed(row, rejected):
            batch.append(item)
        if len(batch) >= BATCH:
            total = Saved(*(a + b for a, b in zip(total, save(batch), strict=True)))
            batch = []
            bar.update(max(0, contacts.lines_read - 1 - bar.n))
    if batch:
        total = Saved(*(a + b for a, b in zip(total, save(batch), strict=True)))
    bar.update(max(0, contacts.lines_read - 1 - bar.n))
    return total


def _parsed(row: Row, rejected: Rejections) -> dict[str, Any] | None:
    if row.values is None:
        rejected.add(row.line, row.problem)
        return None
    try:
        return parse_row(row.values)
    except ValueError as exc:
        rejected.add(row.line, str(exc))
        return None


def _save(sessions: sessionmaker[Session], secret: bytes, batch: list[dict[str, Any]]) -> Saved:
    with sessions() as session, session.begin():
        return save_contacts(session, secret, batch, source="csv-import")


def child_columns(row: dict[str, str]) -> dict[str, Any]:
    """``birth_date`` (YYYY-MM-DD), ``birth_year`` and ``guardians`` (external ids, ;-separated)."""
    item: dict[str, Any] = {}
    if value := (row.get("birth_date") or "").strip():
        try:
            item["birth_date"] = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"birth_date: {value[:40]!r} is not YYYY-MM-DD") from None
    if value := (row.get("birth_year") or "").strip():
        if not (value.isdigit() and 1900 <= int(value) <= 2200):
            raise ValueError(f"birth_year: {value[:40]!r} is not a year")
        item["birth_year"] = int(value)
    if value := (row.get("guardians") or "").strip():
        item["guardians"] = [g.strip() for g in value.split(";") if g.strip()]
    return item
