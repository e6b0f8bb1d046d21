"""Contacts: bulk create/update with consent history (API and CSV import share this)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.db.models import ConsentChange, Contact, Suppression
from services.db.upsert import insert_ignore, upsert
from services.domain.consent import Consent, staff_may_set
from services.domain.erasure import ERASED_REASON, address_key
from services.domain.pseudonyms import pseudonymise

CONSENT: tuple[str, ...] = tuple(Consent)
FIELDS = ("email", "name", "role", "language", "attributes", "tags", "needs")


class Saved(NamedTuple):
    """What a save did: contacts created, updated, and unsubscribes kept (see
    :func:`services.domain.consent.staff_may_set`)."""

    created: int
    updated: int
    kept_unsubscribed: int = 0


def save_contacts(
    session: Session, secret: bytes, items: Sequence[dict[str, Any]], source: str = "api"
) -> Saved:
    """Upsert contacts by external_id; record consent changes; an unsubscribe is kept."""
    by_id = {item["external_id"]: item for item in items}  # last one wins within a request
    existing = {
        c.external_id: (c.id, c.email_consent)
        for c in session.execute(
            select(Contact.external_id, Contact.id, Contact.email_consent).where(
                Contact.external_id.in_(list(by_id))
            )
        ).all()
    }
    kept = 0
    for ext, item in by_id.items():
        requested = (item.get("consent") or {}).get("email")
        if requested and not staff_may_set(existing.get(ext, (0, None))[1], requested):
            by_id[ext], kept = {**item, "consent": None}, kept + 1
    rows = []
    for ext, item in by_id.items():
        row: dict[str, Any] = {"external_id": ext, "pseudonym": pseudonymise(secret, ext)}
        for name in FIELDS:
            if name in item and item[name] is not None:
                row[name] = item[name]
        if "email" in row:
            row["email_normalized"] = row["email"].strip().lower()
        consent = (item.get("consent") or {}).get("email")
        if consent:
            row["email_consent"] = consent
        rows.append(row)
    _keep_erased_away(session, secret, rows)
    # Upsert in groups of identical column sets (an UPDATE only touches given fields).
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        upsert(session, Contact.__table__, group, ["external_id"])
    changed = [
        ext
        for ext, item in by_id.items()
        if (item.get("consent") or {}).get("email")
        and existing.get(ext, (None, None))[1] != item["consent"]["email"]
    ]
    if changed:
        ids = dict(
            session.execute(
                select(Contact.external_id, Contact.id).where(Contact.external_id.in_(changed))
            ).all()
        )
        history = [
            {
                "contact_id": ids[ext],
                "channel": "email",
                "status": by_id[ext]["consent"]["email"],
                "source": source,
            }
            for ext in changed
        ]
        session.execute(insert(ConsentChange), history)  # one executemany, not one INSERT a row
    created = sum(1 for ext in by_id if ext not in existing)
    return Saved(created, len(by_id) - created, kept)


def _keep_erased_away(session: Session, secret: bytes, rows: list[dict[str, Any]]) -> None:
    """An address whose holder was erased (its keyed hash is on the suppression list)
    comes in unsubscribed and suppressed again: it is never mailed."""
    keys = {
        address_key(secret, r["email_normalized"]): r for r in rows if r.get("email_normalized")
    }
    if not keys:
        return
    found = session.scalars(
        select(Suppression.email_normalized).where(Suppression.email_normalized.in_(list(keys)))
    ).all()
    for key in found:
        row = keys[key]
        row["email_consent"] = Consent.UNSUBSCRIBED
        insert_ignore(session, Suppression.__table__,
                      [{"email_normalized": row["email_normalized"], "reason": ERASED_REASON}])  # fmt: skip


def contact_view(contact: Contact) -> dict[str, Any]:
    """What an audience filter sees of a contact (no address)."""
    return {
        "external_id": contact.external_id,
        "role": contact.role,
        "language": contact.language,
        "tags": contact.tags or [],
        "attributes": contact.attributes or {},
    }
