"""People's rights: access (everything held about one person) and erasure.

Erasure removes what identifies the person and keeps what the published counts are made
of, unlinkable:

* the contact's email, name, role, language, birth date, preferences (every nullable
  column), attributes, tags and needs are cleared; guardian links and consents and the
  double opt-in record are removed; its external id replaced by a random one (the external id -> pseudonym link is forgotten);
* the person's pseudonym is replaced, in every table that holds it, by a random one of
  the same shape: stage facts and credits stay (published counts do not change), but a
  later event with the old external id makes a new person;
* reply bodies, event properties (free text) and local-outbox copies are removed;
* pending sends, waiting journey runs and open follow-ups are stopped;
* events still in flight under the old pseudonym are stored under the new one for
  ``WINWIN_ERASURE_INFLIGHT_DAYS`` (services/analytics/erased.py);
* the address stays on the suppression list only as a keyed hash
  (:func:`services.domain.erasure.address_key`), so an import of it is never mailed.

On SQLite the erasing connection sets ``secure_delete`` (freed pages are zeroed) and the
write-ahead log is checkpointed and truncated afterwards, so the removed text is not left
in the database files either.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, String, cast, delete, select, text, update
from sqlalchemy.orm import Session

from services.analytics import erased
from services.db import models, models_experiments, models_social, models_toolkits
from services.db.models import Base, Contact, Suppression
from services.db.models_consent import Reply
from services.db.models_experiments import HoldoutAssignment
from services.db.models_guardians import EmailConfirmation, GuardianConsent, GuardianLink
from services.db.models_journeys import FollowUp, IdentityMerge, JourneyRun
from services.db.session import changed
from services.db.upsert import insert_ignore
from services.domain.consent import Consent
from services.domain.erasure import (
    ERASED_REASON,
    address_key,
    erased_external_id,
    new_pseudonym,
)
from services.domain.inputs import readable
from services.domain.journeys import RunState
from services.domain.lifecycle import SendStatus

log = logging.getLogger(__name__)
#: Every table is registered with ``Base`` before a pseudonym is re-keyed.
TABLES = (models_social, models_toolkits, models_experiments)
#: Columns that hold a person's pseudonym, in any table.
PERSON_COLUMNS = ("person", "contact_person")


class UnknownPerson(LookupError):
    """No contact has that external id."""


def _rows(session: Session, table: Any, *where: Any) -> list[dict[str, Any]]:
    columns = table.__table__.columns
    found = session.execute(select(*columns).where(*where)).mappings()
    return [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
            for row in found]  # fmt: skip


def export(session: Session, external_id: str) -> dict[str, Any]:
    """Everything WINWIN holds about the contact with ``external_id``, as JSON values."""
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        raise UnknownPerson(external_id)
    person = contact.pseudonym
    sends = _rows(session, models.Send, models.Send.contact_id == contact.id)
    send_ids = [s["id"] for s in sends]
    held = _rows(session, Contact, Contact.id == contact.id)[0]
    held["attributes"] = held["attributes"] and readable(held["attributes"])
    return {
        "contact": held,
        "consent_history": _rows(
            session, models.ConsentChange, models.ConsentChange.contact_id == contact.id
        ),
        "events": _rows(session, models.EngagementEvent, models.EngagementEvent.person == person),
        "touches": _rows(session, models.Touch, models.Touch.person == person),
        "sends": sends,
        "outbox": _rows(session, models.LocalEmail, models.LocalEmail.send_id.in_(send_ids)),
        "replies": _rows(session, Reply, Reply.person == person),
        "journey_runs": _rows(session, JourneyRun, JourneyRun.person == person),
        "follow_ups": _rows(session, FollowUp, FollowUp.person == person),
        "merges": _rows(session, IdentityMerge, IdentityMerge.contact_id == contact.id),
        "stage_facts": _rows(session, models.StageFact, models.StageFact.person == person),
        "holdout_assignments": _rows(
            session, HoldoutAssignment, HoldoutAssignment.person == person
        ),
        **_family(session, contact.id),
    }


def _family(session: Session, contact_id: int) -> dict[str, list[dict[str, Any]]]:
    """Guardian links and consents the person is in (as child or guardian), and the
    double opt-in record: the rows that name the contact by its row id."""
    return {
        "guardian_links": _rows(session, GuardianLink, (GuardianLink.child_id == contact_id)
                                | (GuardianLink.guardian_id == contact_id)),
        "guardian_consents": _rows(session, GuardianConsent,
                                   (GuardianConsent.child_id == contact_id)
                                   | (GuardianConsent.guardian_id == contact_id)),
        "email_confirmations": _rows(session, EmailConfirmation,
                                     EmailConfirmation.contact_id == contact_id),
    }  # fmt: skip


def erase(
    session: Session, secret: bytes, external_id: str, now: datetime | None = None
) -> dict[str, int]:
    """Erase the contact with ``external_id`` (see the module's docstring); returns how
    many rows of each kind were changed. Run it in one transaction."""
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id))
    if contact is None:
        raise UnknownPerson(external_id)
    old, new = contact.pseudonym, new_pseudonym()
    done = _stop_and_clear(session, contact, old)
    address = contact.email_normalized or (contact.email or "").strip().lower()
    if address:
        session.execute(delete(Suppression).where(Suppression.email_normalized == address))
        insert_ignore(session, Suppression.__table__,
                      [{"email_normalized": address_key(secret, address), "reason": ERASED_REASON}])  # fmt: skip
    done["rekeyed"] = _rekey(session, old, new) + _rekey_outbox(session, old, new)
    done["family_rows_removed"] = _forget_family(session, contact.id)
    erased.remember(session, secret, old, new, now or datetime.now(UTC))  # events in flight
    cleared = {c.name: None for c in Contact.__table__.columns if c.nullable}  # all of them,
    session.execute(  # birth date and preferences included, and columns yet to come
        update(Contact).where(Contact.id == contact.id).values(
            cleared | dict(external_id=erased_external_id(), pseudonym=new, attributes={},
                           tags=[], needs=[], email_consent=Consent.UNSUBSCRIBED)
        )
    )  # fmt: skip
    log.info("contact %s erased", contact.id)  # the row id only: no PII in logs
    return done


def _forget_family(session: Session, contact_id: int) -> int:
    """Guardian links and consents (free text written by the family) and the double
    opt-in record go: a consent given by or for an erased person no longer holds."""
    removed = 0
    for table, where in (
        (GuardianConsent, (GuardianConsent.child_id == contact_id)
                          | (GuardianConsent.guardian_id == contact_id)),
        (GuardianLink, (GuardianLink.child_id == contact_id)
                       | (GuardianLink.guardian_id == contact_id)),
        (EmailConfirmation, EmailConfirmation.contact_id == contact_id),
    ):  # fmt: skip
        removed += changed(session, delete(table).where(where))
    return removed


def _stop_and_clear(session: Session, contact: Contact, person: str) -> dict[str, int]:
    """Pending sends, journey timers and follow-ups stop; bodies and free text go."""
    S = models.Send
    sends = [s for (s,) in session.execute(select(S.id).where(S.contact_id == contact.id))]
    counts = {
        "sends_stopped": changed(session,
            update(S).where(S.contact_id == contact.id, S.status == SendStatus.PENDING)
            .values(status=SendStatus.SUPPRESSED, error="erased")
        ),
        "outbox_removed": changed(session,
            delete(models.LocalEmail).where(models.LocalEmail.send_id.in_(sends))
        ),
        "runs_stopped": changed(session,
            update(JourneyRun).where(JourneyRun.person == person,
                                     JourneyRun.state == RunState.WAITING)
            .values(state=RunState.EXITED)
        ),
        "follow_ups_closed": changed(session,
            update(FollowUp).where(FollowUp.person == person).values(done=True)
        ),
        "replies_cleared": changed(session,
            update(Reply).where(Reply.person == person)
            .values(from_email=None, subject=None, text=None, html=None)
        ),
        "events_cleared": changed(session,
            update(models.EngagementEvent).where(models.EngagementEvent.person == person)
            .values(properties={})
        ),
    }  # fmt: skip
    session.execute(update(S).where(S.contact_id == contact.id).values(error=None))
    return counts


def _rekey(session: Session, old: str, new: str) -> int:
    """Every column that holds a pseudonym: ``old`` becomes ``new``."""
    rekeyed = 0
    for table in Base.metadata.sorted_tables:
        for name in PERSON_COLUMNS:
            if name in table.columns and table.name != Contact.__tablename__:
                column = table.columns[name]
                rekeyed += changed(session, update(table).where(column == old).values({name: new}))
    return rekeyed


def _rekey_outbox(session: Session, old: str, new: str) -> int:
    """Records waiting in (or kept by) the transactional outbox carry the pseudonym too."""
    Outbox = models.OutboxMessage
    found = session.execute(
        select(Outbox.id, Outbox.records).where(cast(Outbox.records, String).contains(old))
    )
    changed = 0
    for row_id, records in found.all():
        rewritten = json.loads(json.dumps(records).replace(old, new))
        session.execute(update(Outbox).where(Outbox.id == row_id).values(records=rewritten))
        changed += 1
    return changed


def checkpoint(engine: Engine) -> None:
    """SQLite: move the write-ahead log into the database file and truncate it, so the
    text an erasure removed is in neither file."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
