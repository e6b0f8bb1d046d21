"""``winwin contacts import FILE.csv``: bulk contacts with progress and a report of
rejected rows (row number and reason); good rows are kept whatever the bad ones do."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from tqdm import tqdm

from services.campaigns.contacts import CONSENT, save_contacts
from services.config import Settings
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker

KNOWN = {"external_id", "email", "name", "role", "language", "consent_email", "tags", "needs"}
BATCH = 1000


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a contact, or ValueError naming the column."""
    ext = (row.get("external_id") or "").strip()
    if not ext or len(ext) > 200:
        raise ValueError("external_id: required, at most 200 characters")
    item: dict[str, Any] = {"external_id": ext}
    if email := (row.get("email") or "").strip():
        try:
            item["email"] = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"email: {exc}") from None
    for name in ("name", "role", "language"):
        if value := (row.get(name) or "").strip():
            item[name] = value
    consent = (row.get("consent_email") or "unconfirmed").strip().lower()
    if consent not in CONSENT:
        raise ValueError(f"consent_email: {consent!r} is not one of {', '.join(CONSENT)}")
    item["consent"] = {"email": consent}
    for name in ("tags", "needs"):
        if value := (row.get(name) or "").strip():
            item[name] = [t.strip() for t in value.split(";") if t.strip()]
    item["attributes"] = {
        k: v for k, v in row.items() if k not in KNOWN and k and v not in (None, "")
    }
    return item


def import_csv(settings: Settings, path: str) -> int:
    file = Path(path)
    if not file.is_file():
        from services.errors import UsageError

        raise UsageError(f"{path}: no such file")
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    secret = settings.secret_key.get_secret_value().encode()
    created = updated = 0
    rejected: list[tuple[int, str]] = []
    with file.open(newline="", encoding="utf-8-sig") as fh:
        total = max(0, sum(1 for _ in fh) - 1)
        fh.seek(0)
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "external_id" not in reader.fieldnames:
            from services.errors import UsageError

            raise UsageError(f"{path}: needs a header row with an external_id column")
        batch: list[dict[str, Any]] = []
        with tqdm(total=total, unit="row", desc="importing contacts", file=sys.stderr) as bar:
            read = 0
            for number, row in enumerate(reader, start=2):
                read += 1
                try:
                    batch.append(parse_row(row))
                except ValueError as exc:
                    rejected.append((number, str(exc)))
                if len(batch) >= BATCH:
                    c, u = _save(sessions, secret, batch)
                    created, updated = created + c, updated + u
                    bar.update(read - bar.n)
                    batch = []
            if batch:
                c, u = _save(sessions, secret, batch)
                created, updated = created + c, updated + u
            bar.update(max(0, read - bar.n))
    _report(file, created, updated, rejected)
    return 0 if not rejected else 2


def _report(file: Path, created: int, updated: int, rejected: list[tuple[int, str]]) -> None:
    """Counts, the first 50 rejected rows on stdout, all of them in FILE.rejected.csv."""
    print(f"contacts: {created} created, {updated} updated, {len(rejected)} rejected")
    for number, reason in rejected[:50]:
        print(f"  line {number}: {reason}")
    if len(rejected) > 50:
        print(f"  … and {len(rejected) - 50} more")
    if not rejected:
        return
    report = file.with_name(file.name + ".rejected.csv")
    try:
        with report.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows(rejected)
        print(f"every rejected row and why: {report}")
    except OSError as exc:
        print(f"(could not write {report}: {exc})")


def _save(sessions: Any, secret: bytes, batch: list[dict[str, Any]]) -> tuple[int, int]:
    with sessions() as session, session.begin():
        return save_contacts(session, secret, batch, source="csv-import")
